/* The test harness: counting checks and reporting failures (see harness.h). */
#include "harness.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

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

int test_make_dir(char *dir, size_t n, const char *tag)
{
    snprintf(dir, n, "/tmp/cnn-test-%s-XXXXXX", tag);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

void test_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    char p[512];
    if (!d) return;
    while ((ent = readdir(d))) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, ent->d_name);
        remove(p);
    }
    closedir(d);
    rmdir(dir);
}

int test_done(void)
{
    printf("%d checks, %d failed\n", test_checks, test_failures);
    return test_failures ? 1 : 0;
}
