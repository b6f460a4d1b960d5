/*
 * A tiny test harness: CHECK macros that count failures and report the
 * expression with file:line, and helpers to compare float arrays printing
 * the largest difference. Each test program ends with `return test_done();`
 * which prints "N checks, M failed" and returns non-zero on failure.
 */
#ifndef CNN_TEST_HARNESS_H
#define CNN_TEST_HARNESS_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

extern int test_checks, test_failures;

void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHECK(cond) do { test_checks++; if (!(cond)) \
    test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)
#define CHECK_MSG(cond, ...) do { test_checks++; if (!(cond)) \
    test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); test_checks++; \
    if (!(a_ - b_ <= (tol) && b_ - a_ <= (tol))) \
    test_fail(__FILE__, __LINE__, "%s = %.8g, expected %s = %.8g (tol %g)", \
              #a, a_, #b, b_, (double)(tol)); } while (0)
/* The message must contain the expected substring. */
#define CHECK_CONTAINS(msg, sub) do { test_checks++; \
    if (!strstr((msg), (sub))) test_fail(__FILE__, __LINE__, \
    "message \"%s\" lacks \"%s\"", (msg), (sub)); } while (0)

/* Compare n floats; prints the largest absolute difference under `what`;
 * counts one failure if it exceeds tol. Returns the largest difference. */
double check_floats(const char *what, const float *got, const float *want,
                    size_t n, double tol);

/* A fresh folder /tmp/cnn-test-TAG-XXXXXX for files a test writes: its
 * path goes into dir (n bytes); returns 0, or -1 after printing why. */
int test_make_dir(char *dir, size_t n, const char *tag);

/* Remove that folder and the files in it (one level, as the tests make). */
void test_remove_dir(const char *dir);

int test_done(void);

#endif
