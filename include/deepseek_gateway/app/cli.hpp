#pragma once
// The command line (SPEC §2). main() calls run_cli() and returns its result.

namespace dsgw::app {

// Exit codes: 0 clean, 1 bad configuration, 2 bad command line, 3 runtime
// failure at start.
int run_cli(int argc, char** argv);

}  // namespace dsgw::app
