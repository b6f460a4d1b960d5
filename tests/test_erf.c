/*
 * Effective receptive fields against closed forms: for k stacked 3x3
 * convolutions with all weights 1 and no bias, the gradient of the centre
 * output unit with respect to the input counts the paths from each input
 * pixel, which is the outer product of the coefficients of (1 + x + x^2)^k
 * with itself (k = 2: 1 2 3 2 1; k = 3: 1 3 6 7 6 3 1).
 */
#include <math.h>
#include <stdlib.h>

#include "erf.h"
#include "harness.h"
#include "rng.h"

static void check_stack(size_t k, const double *coef)
{
    cnn_opt opts[8][3];
    cnn_layer_spec specs[8];
    for (size_t i = 0; i < k; i++) {
        opts[i][0] = (cnn_opt){.key = "filters", .text = "1"};
        opts[i][1] = (cnn_opt){.key = "kernel", .text = "3"};
        opts[i][2] = (cnn_opt){.key = "bias", .text = "false"};
        specs[i] = (cnn_layer_spec){.kind = "conv", .opts = {opts[i], 3, {0}, 0, NULL}};
    }
    size_t side = 15, n = 2;
    cnn_model_spec m = {{1, side, side}, specs, k, 0};
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&m, n, &e);
    CHECK_MSG(net != NULL, "cannot build: %s", e.msg);
    if (!net) return;
    for (size_t i = 0; i < net->nparam_floats; i++) net->params[i] = 1.0f;
    uint64_t rng = 3;
    for (size_t i = 0; i < n * side * side; i++) net->x[i] = cnn_rng_normal(&rng);
    double *map = malloc(side * side * sizeof *map);
    cnn_erf_map(net, k - 1, n, map);
    /* the centre unit of a (side - 2k) map sits over input pixel side/2 */
    size_t width = 2 * k + 1, start = side / 2 - k;
    double worst = 0;
    for (size_t y = 0; y < side; y++)
        for (size_t x = 0; x < side; x++) {
            int inside = y >= start && y < start + width && x >= start && x < start + width;
            double want = inside ? coef[y - start] * coef[x - start] : 0.0;
            worst = fmax(worst, fabs(map[y * side + x] - want));
        }
    printf("%zu stacked 3x3 convolutions: max |map - closed form| = %g\n", k, worst);
    CHECK(worst < 1e-9);
    double r50 = cnn_erf_radius(map, side, side, 0.5);
    double r95 = cnn_erf_radius(map, side, side, 0.95);
    printf("  radius holding 50%%: %.3f, 95%%: %.3f (theoretical field %zu)\n", r50, r95, width);
    CHECK(r50 > 0 && r50 < r95 && r95 <= k * sqrt(2.0) + 1e-9);
    free(map);
    cnn_net_free(net);
}

static void test_radius(void)
{
    /* one pixel: radius 0; a plus shape of five equal pixels: 50% needs the
     * centre and two neighbours at distance 1 */
    double map[25] = {0};
    map[12] = 1;
    CHECK_NEAR(cnn_erf_radius(map, 5, 5, 0.95), 0.0, 1e-12);
    map[7] = map[11] = map[13] = map[17] = 1;
    CHECK_NEAR(cnn_erf_radius(map, 5, 5, 0.5), 1.0, 1e-12);
    CHECK_NEAR(cnn_erf_radius(map, 5, 5, 0.1), 0.0, 1e-12);
}

int main(void)
{
    const double two[] = {1, 2, 3, 2, 1};
    const double three[] = {1, 3, 6, 7, 6, 3, 1};
    check_stack(2, two);
    check_stack(3, three);
    test_radius();
    return test_done();
}
