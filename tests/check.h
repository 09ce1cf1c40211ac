/* The CHECK of the C test harnesses that share it (tests/test_device.c, tests/test_server_core.c): a failed check
 * is counted in `failures` and printed with its file, line, condition and message; the test then goes on, and
 * main returns non-zero when failures > 0. */
#ifndef EI_TESTS_CHECK_H
#define EI_TESTS_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(c, ...)                                              \
  do {                                                             \
    if (!(c)) {                                                    \
      failures++;                                                  \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c); \
      fprintf(stderr, __VA_ARGS__);                                \
      fputc('\n', stderr);                                         \
    }                                                              \
  } while (0)

#endif
