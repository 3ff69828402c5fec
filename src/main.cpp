#include "deepseek_gateway/app/cli.hpp"

int main(int argc, char** argv) { return dsgw::app::run_cli(argc, argv); }
