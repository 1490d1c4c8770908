/* opl tests — the TAP counters shared by a test program. */
#include "tests/tap.h"
int tap_n = 0, tap_failed = 0;
