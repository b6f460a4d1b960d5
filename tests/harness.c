/* The test harness: counting checks and reporting failures (see harness.h). */
#include "harness.h"

#include <math.h>
#include <stdarg.h>

int test_checks, test_failures;

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    test_failures++;
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double check_floats(const char *what, const float *got, const float *want,
                    size_t n, double tol)
{
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (d > worst || isnan(d)) { worst = isnan(d) ? INFINITY : d; at = i; }
    }
    test_checks++;
    printf("%-40s max |diff| = %.3g\n", what, worst);
    if (!(worst <= tol))
        test_fail(__FILE__, __LINE__, "%s: element %zu is %.8g, expected %.8g (tol %g)",
                  what, at, n ? got[at] : 0.0, n ? want[at] : 0.0, tol);
    return worst;
}

int test_done(void)
{
    printf("%d checks, %d failed\n", test_checks, test_failures);
    return test_failures ? 1 : 0;
}
