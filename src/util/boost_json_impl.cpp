// Boost.JSON, compiled once (its header-only mode): a translation unit of its
// own, so that an executable that compiles it itself (tests/unit/metrics_test.cpp)
// does not pull this one in beside it.
#include <boost/json/src.hpp>
