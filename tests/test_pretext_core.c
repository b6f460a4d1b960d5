/*
 * What the pretext tasks (autoencoder, colorization, context prediction,
 * contrastive learning) need from the engine:
 *  - the mean squared error: a value by hand and central differences;
 *  - NT-Xent: a value by hand (and PyTorch's gradient for it), central
 *    differences on random embeddings, `correct`, closed forms for
 *    identical views, a tiny temperature that must not overflow;
 *  - the pair layer: the interleaved layout, each layer's batch in a net
 *    that halves it (once and twice), gradient checks through whole nets,
 *    an inference net against the training net, receptive fields, and the
 *    error for a layer whose inputs have different batches.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "graph.h"
#include "harness.h"
#include "loss.h"
#include "net.h"
#include "rng.h"

/* ---- the mean squared error ---- */

static void test_mse_by_hand(void)
{
    /* y - t = 0.5 0 2 / -1 -2 -0.5; squares 0.25 0 4 1 4 0.25 sum to 9.5,
     * over n k = 6 values: 9.5 / 6 = 1.58333; dy = 2 (y - t) / 6. */
    const float y[6] = {1, 2, 3, 0, -1, 0.5f}, t[6] = {0.5f, 2, 1, 1, 1, 1};
    const float want[6] = {1.0f / 6, 0, 4.0f / 6, -2.0f / 6, -4.0f / 6, -1.0f / 6};
    float dy[6];
    CHECK_NEAR(cnn_loss_mse(y, t, 2, 3, dy), 9.5 / 6, 1e-12);
    check_floats("mse dy by hand", dy, want, 6, 1e-7);
    CHECK_NEAR(cnn_loss_mse(y, t, 2, 3, NULL), 9.5 / 6, 1e-12);
    CHECK(cnn_loss_mse(y, t, 0, 3, NULL) == 0.0);
}

static void test_mse_grad(void)
{
    enum { N = 3, K = 4 };
    uint64_t rng = cnn_rng_seed(21, 0);
    float y[N * K], t[N * K], g[N * K], num[N * K];
    for (size_t i = 0; i < N * K; i++) {
        y[i] = cnn_rng_normal(&rng);
        t[i] = cnn_rng_normal(&rng);
    }
    cnn_loss_mse(y, t, N, K, g);
    const float h = 1.0f / 512;   /* exact in float: the step is what it says */
    for (size_t i = 0; i < N * K; i++) {
        const float keep = y[i];
        y[i] = keep + h;
        const double up = cnn_loss_mse(y, t, N, K, NULL);
        y[i] = keep - h;
        const double down = cnn_loss_mse(y, t, N, K, NULL);
        y[i] = keep;
        num[i] = (float)((up - down) / (2.0 * h));
    }
    check_floats("mse dy vs central differences", g, num, N * K, 1e-5);
}

/* ---- NT-Xent ---- */

/* The loss of z [rows][d] with its gradient; work is allocated here. */
static double nt_xent(const float *z, size_t rows, size_t d, float temperature,
                      float *dz, size_t *correct)
{
    float *work = malloc(cnn_loss_nt_xent_work(rows, d) * sizeof *work);
    double loss = cnn_loss_nt_xent(z, rows, d, temperature, dz, correct, work);
    free(work);
    return loss;
}

static void test_nt_xent_by_hand(void)
{
    /* Normalised: u0 = (1, 0), u1 = (0.6, 0.8), u2 = (0, 1), u3 = (-1, 0).
     * At T = 0.5, s = 2 u.u: s01 = 1.2, s02 = 0, s03 = -2, s12 = 1.6,
     * s13 = -1.2, s23 = 0. Partners 0-1 and 2-3:
     *   row 0: -1.2 + log(e^1.2 + e^0 + e^-2)    = 0.29412856
     *   row 1: -1.2 + log(e^1.2 + e^1.6 + e^-1.2) = 0.94877444
     *   row 2:  0   + log(e^0 + e^1.6 + e^0)     = 1.93917788
     *   row 3:  0   + log(e^-2 + e^-1.2 + e^0)   = 0.36223013
     * mean 0.88607775. PyTorch (F.normalize, masked cross_entropy, float64)
     * gives 0.886077754 and the gradient below. Most similar other row:
     * 0 -> 1 (yes), 1 -> 2 (no), 2 -> 1 (no), 3 -> 2 (yes): 2 correct. */
    const float z[8] = {2, 0, 3, 4, 0, 0.5f, -1, 0};
    const float torch_dz[8] = {0.000000000f, -0.081454243f, -0.133114186f, 0.099835640f,
                               2.302329791f, 0.000000000f, 0.000000000f, -0.482109719f};
    float dz[8];
    size_t correct = 99;
    const double loss = nt_xent(z, 4, 2, 0.5f, dz, &correct);
    CHECK_NEAR(loss, 0.886077754, 1e-6);
    check_floats("nt_xent dz vs PyTorch", dz, torch_dz, 8, 1e-6);
    CHECK_MSG(correct == 2, "nt_xent correct: %zu, expected 2", correct);
    /* without a gradient: the same loss, dz untouched */
    CHECK_NEAR(nt_xent(z, 4, 2, 0.5f, NULL, NULL), 0.886077754, 1e-6);
}

/* NT-Xent written out plainly in double, as the definition reads: the
 * reference for values and central differences (in float, the differences
 * of a loss of similarities rounded to float are mostly rounding noise at
 * small temperatures). z [rows][d]. */
static double nt_xent_reference(const double *z, size_t rows, size_t d, double temperature)
{
    double total = 0;
    for (size_t i = 0; i < rows; i++) {
        double s[64], sum = 0, mx = -INFINITY;   /* s [rows], rows <= 64 */
        for (size_t k = 0; k < rows; k++) {
            double dot = 0, ni = 0, nk = 0;
            for (size_t j = 0; j < d; j++) {
                dot += z[i * d + j] * z[k * d + j];
                ni += z[i * d + j] * z[i * d + j];
                nk += z[k * d + j] * z[k * d + j];
            }
            s[k] = dot / (fmax(sqrt(ni), 1e-12) * fmax(sqrt(nk), 1e-12)) / temperature;
            if (k != i) mx = fmax(mx, s[k]);
        }
        for (size_t k = 0; k < rows; k++)
            if (k != i) sum += exp(s[k] - mx);
        total += mx + log(sum) - s[i ^ 1];
    }
    return total / (double)rows;
}

/* The loss against the reference, and its gradient against the
 * reference's central differences; the analytic gradient of each row is
 * also orthogonal to that row (the loss does not change with a row's
 * length), which checks the normalisation's part on its own. */
static void test_nt_xent_grad(size_t rows, size_t d, float temperature, uint64_t seed)
{
    float *z = malloc(rows * d * sizeof *z);     /* [rows][d] */
    float *g = malloc(rows * d * sizeof *g);     /* [rows][d] */
    float *num = malloc(rows * d * sizeof *num); /* [rows][d] */
    double *zd = malloc(rows * d * sizeof *zd);  /* [rows][d] */
    uint64_t rng = cnn_rng_seed(seed, 5);
    for (size_t i = 0; i < rows * d; i++) zd[i] = z[i] = 2.0f * cnn_rng_normal(&rng);
    const double loss = nt_xent(z, rows, d, temperature, g, NULL);
    const double want = nt_xent_reference(zd, rows, d, temperature);
    CHECK_MSG(fabs(loss - want) <= 1e-5 * fmax(1.0, want),
              "nt_xent %zux%zu T %g: %.9g, the reference %.9g", rows, d,
              (double)temperature, loss, want);
    const double h = 1e-4;
    for (size_t i = 0; i < rows * d; i++) {
        const double keep = zd[i];
        zd[i] = keep + h;
        const double up = nt_xent_reference(zd, rows, d, temperature);
        zd[i] = keep - h;
        const double down = nt_xent_reference(zd, rows, d, temperature);
        zd[i] = keep;
        num[i] = (float)((up - down) / (2.0 * h));
    }
    char what[80];
    snprintf(what, sizeof what, "nt_xent dz %zux%zu T %g vs central differences",
             rows, d, (double)temperature);
    check_floats(what, g, num, rows * d, 1e-5);
    double worst = 0;
    for (size_t i = 0; i < rows; i++) {
        double along = 0, len = 0;
        for (size_t j = 0; j < d; j++) {
            along += (double)g[i * d + j] * z[i * d + j];
            len += (double)z[i * d + j] * z[i * d + j];
        }
        worst = fmax(worst, fabs(along) / sqrt(len));
    }
    CHECK_MSG(worst < 1e-6, "nt_xent: dz has a part %.3g along its row z", worst);
    free(z);
    free(g);
    free(num);
    free(zd);
}

/* Rows 2i and 2i+1 identical, pairs on orthogonal axes (scaled, so the
 * normalisation matters): s = 1/T with the partner, 0 with the other
 * rows - 2, so every row's loss is -1/T + log(e^(1/T) + rows - 2)
 * = log(1 + (rows - 2) e^(-1/T)). */
static void test_nt_xent_identical_pairs(float temperature)
{
    enum { ROWS = 6, D = 3 };
    float z[ROWS * D] = {0}, dz[ROWS * D];
    for (size_t i = 0; i < ROWS; i++) z[i * D + i / 2] = (float)(i + 1);
    size_t correct = 0;
    const double loss = nt_xent(z, ROWS, D, temperature, dz, &correct);
    const double want = log1p((ROWS - 2) * exp(-1.0 / temperature));
    CHECK_MSG(fabs(loss - want) <= 1e-6 * fmax(1.0, want),
              "nt_xent identical pairs at T %g: %.10g, expected %.10g",
              (double)temperature, loss, want);
    CHECK_MSG(correct == ROWS, "nt_xent identical pairs: %zu correct, expected %d",
              correct, ROWS);
    int finite = 1;
    for (size_t i = 0; i < ROWS * D; i++) finite &= isfinite(dz[i]) != 0;
    CHECK_MSG(finite, "nt_xent identical pairs at T %g: dz not finite", (double)temperature);
}

/* Every row the same direction: all similarities equal, each row's loss
 * is log(rows - 1); ties go to the first other row, so rows 0 and 1 (whose
 * first other row is their partner) are the only correct ones. The rows
 * normalise to (0, 1) exactly and 1/T = 4, so the ties are exact. */
static void test_nt_xent_all_equal(void)
{
    enum { ROWS = 6, D = 2 };
    float z[ROWS * D];
    for (size_t i = 0; i < ROWS; i++) {
        z[i * D] = 0;
        z[i * D + 1] = (float)(i + 1);
    }
    size_t correct = 0;
    CHECK_NEAR(nt_xent(z, ROWS, D, 0.25f, NULL, &correct), log(ROWS - 1.0), 1e-6);
    CHECK_MSG(correct == 2, "nt_xent all equal: %zu correct, expected 2", correct);
}

/* ---- the pair layer ---- */

/* pair alone on [4][2][1][2] = 0..15: output sample m holds sample 2m's
 * two channels, then sample 2m+1's. */
static void test_pair_layout(void)
{
    enum { N = 4, C = 2, HW = 2 };
    test_graph g = {0};
    test_graph_add(&g, "p", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    cnn_model_spec m = test_graph_model(&g, (cnn_shape){C, 1, HW});
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&m, N, &e);
    CHECK_MSG(net, "pair alone does not build: %s", e.msg);
    if (!net) return;
    cnn_layer *p = cnn_net_output(net);
    CHECK(p->out.c == 2 * C && p->out.h == 1 && p->out.w == HW);
    CHECK(p->batch_div == 2 && p->halves_batch);
    for (size_t i = 0; i < N * C * HW; i++) net->x[i] = (float)i;
    cnn_net_forward(net, N, 1);
    CHECK_MSG(p->batch == N / 2, "pair's batch is %zu, expected %d", p->batch, N / 2);
    float want[N * C * HW];   /* [N/2][2C][1][HW], from the definition */
    for (size_t s = 0; s < N / 2; s++)
        for (size_t c = 0; c < 2 * C; c++)
            for (size_t j = 0; j < HW; j++) {
                size_t from = 2 * s + c / C, fc = c % C;
                want[(s * 2 * C + c) * HW + j] = net->x[(from * C + fc) * HW + j];
            }
    check_floats("pair forward layout", p->y, want, N * C * HW, 0);
    /* by hand, the second output sample: samples 2 and 3 = 8..15 in order */
    CHECK(p->y[8] == 8.0f && p->y[11] == 11.0f && p->y[12] == 12.0f && p->y[15] == 15.0f);

    /* backward hands each dy to its input position, added onto dx */
    net->want_input_grad = 1;
    for (size_t i = 0; i < N * C * HW; i++) p->dy[i] = 0.5f * (float)i;
    cnn_net_backward(net);
    float half[N * C * HW], again[N * C * HW];
    for (size_t i = 0; i < N * C * HW; i++) {
        half[i] = 0.5f * (float)i;
        again[i] = (float)i;
    }
    check_floats("pair backward", net->dx, half, N * C * HW, 0);
    p->kind->backward(p);
    check_floats("pair backward accumulates", net->dx, again, N * C * HW, 0);
    cnn_net_free(net);
}

/* conv -> pair -> dense built for 4 samples: the batches each layer runs
 * with, and a NaN left past the dense output's 2 samples (stale memory of
 * a batch-4 plan) is not the pass's and must not be reported. */
static void test_pair_batches(void)
{
    test_graph g = {0};
    test_graph_add(&g, "c", "conv", NULL, NULL, "filters", "2", "kernel", "3");
    g.opts[0][2] = (cnn_opt){.key = "pad", .text = "1"};
    g.specs[0].opts.n = 3;
    test_graph_add(&g, "p", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g, "d", "dense", NULL, NULL, "units", "3", NULL, NULL);
    cnn_model_spec m = test_graph_model(&g, (cnn_shape){2, 3, 3});
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&m, 4, &e);
    CHECK_MSG(net, "conv -> pair -> dense does not build: %s", e.msg);
    if (!net) return;
    uint64_t rng = cnn_rng_seed(3, 1);
    cnn_net_init(net, &rng);
    for (size_t i = 0; i < 4 * 18; i++) net->x[i] = cnn_rng_normal(&rng);
    cnn_net_forward(net, 4, 1);
    CHECK(net->layers[0].batch == 4 && net->layers[0].batch_div == 1);
    CHECK(net->layers[1].batch == 2 && net->layers[1].batch_div == 2);
    CHECK(net->layers[2].batch == 2 && net->layers[2].batch_div == 2);
    cnn_net_forward(net, 2, 1);   /* a smaller batch: one pair */
    CHECK(net->layers[0].batch == 2 && net->layers[2].batch == 1);
    cnn_net_forward(net, 4, 1);
    cnn_layer *d = cnn_net_output(net);
    d->y[2 * 3] = NAN;
    cnn_nonfinite r;
    CHECK_MSG(!cnn_net_find_nonfinite(net, 0, &r),
              "a NaN past the output's batch is reported in layer '%s'",
              r.layer ? r.layer->name : "?");
    d->y[1 * 3 + 2] = NAN;
    CHECK(cnn_net_find_nonfinite(net, 0, &r) && r.layer == d && r.index == 1);

    /* The softmax loss takes one label per output sample (2). A second
     * backward gives the same gradients as the first: backward zeroes every
     * layer's dy and the input gradient over that layer's own batch (4
     * before the pair), not over the output's 2. */
    const int labels[2] = {0, 2};
    float first_dx[4 * 18], *first_grads = malloc(net->nparam_floats * sizeof(float));
    net->want_input_grad = 1;
    for (int round = 0; round < 2; round++) {
        cnn_net_forward(net, 4, 1);
        const double loss = cnn_net_loss(net, labels, NULL);
        CHECK_MSG(isfinite(loss) && loss > 0, "loss after pair: %g", loss);
        cnn_net_backward(net);
        if (round == 0) {
            memcpy(first_dx, net->dx, sizeof first_dx);
            memcpy(first_grads, net->grads, net->nparam_floats * sizeof(float));
        }
    }
    check_floats("pair net: input gradient of a second backward", net->dx, first_dx,
                 4 * 18, 0);
    check_floats("pair net: parameter gradients of a second backward", net->grads,
                 first_grads, net->nparam_floats, 0);
    free(first_grads);
    cnn_net_free(net);
}

static void grad_net(const test_graph *g, cnn_shape in, size_t batch)
{
    cnn_model_spec m = test_graph_model(g, in);
    gradcheck_opts o = {0};
    o.batch = batch;
    o.training = 1;   /* backward follows a training forward (conv's saved columns) */
    o.tol = 5e-3;
    int failed = gradcheck_model(&m, &o);
    CHECK_MSG(failed == 0, "gradcheck through pair (batch %zu): %d tensors failed",
              batch, failed);
}

static void test_pair_grad(void)
{
    test_graph g = {0};   /* conv -> pair -> dense: 4 samples in, 2 out */
    test_graph_add(&g, "c", "conv", NULL, NULL, "filters", "2", "kernel", "3");
    test_graph_add(&g, "p", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g, "d", "dense", NULL, NULL, "units", "3", NULL, NULL);
    grad_net(&g, (cnn_shape){2, 4, 4}, 4);

    test_graph g2 = {0};  /* two pair layers: 8 samples in, 2 out; batchnorm on 4 */
    test_graph_add(&g2, "c", "conv", NULL, NULL, "filters", "2", "kernel", "1");
    test_graph_add(&g2, "p1", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g2, "bn", "batchnorm", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g2, "p2", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g2, "d", "dense", NULL, NULL, "units", "2", NULL, NULL);
    grad_net(&g2, (cnn_shape){1, 2, 2}, 8);

    test_graph g3 = {0};  /* a branch after pair: its batch is the pair's */
    test_graph_add(&g3, "c", "conv", NULL, NULL, "filters", "2", "kernel", "1");
    test_graph_add(&g3, "p", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g3, "a", "conv", "p", NULL, "filters", "4", "kernel", "1");
    test_graph_add(&g3, "s", "add", "p", "a", NULL, NULL, NULL, NULL);
    test_graph_add(&g3, "d", "dense", NULL, NULL, "units", "2", NULL, NULL);
    grad_net(&g3, (cnn_shape){1, 2, 3}, 4);
}

/* The inference net (outputs sharing buffers, conv and relu folded) gives
 * what the training net gives in evaluation mode. */
static void test_pair_inference(void)
{
    test_graph g = {0};
    test_graph_add(&g, "c", "conv", NULL, NULL, "filters", "3", "kernel", "3");
    test_graph_add(&g, "r", "relu", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g, "p", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g, "c2", "conv", NULL, NULL, "filters", "2", "kernel", "1");
    test_graph_add(&g, "d", "dense", NULL, NULL, "units", "4", NULL, NULL);
    cnn_model_spec m = test_graph_model(&g, (cnn_shape){2, 5, 5});
    cnn_error e = {0};
    cnn_net *train = cnn_net_create(&m, 6, &e);
    cnn_net *inf = cnn_net_create_inference(&m, 6, &e);
    CHECK_MSG(train && inf, "pair nets do not build: %s", e.msg);
    if (train && inf) {
        uint64_t rng = cnn_rng_seed(9, 2);
        cnn_net_init(train, &rng);
        memcpy(inf->params, train->params, train->nparam_floats * sizeof(float));
        for (size_t i = 0; i < 6 * 50; i++) inf->x[i] = train->x[i] = cnn_rng_normal(&rng);
        cnn_net_forward(train, 6, 0);
        cnn_net_forward(inf, 6, 0);
        check_floats("pair: inference net vs training net", cnn_net_output(inf)->y,
                     cnn_net_output(train)->y, 3 * 4, 1e-5);
    }
    cnn_net_free(train);
    cnn_net_free(inf);
}

/* pair is a 1x1 window of stride 1: 3x3 conv, pair, 3x3 conv sees 5x5. */
static void test_pair_receptive_field(void)
{
    test_graph g = {0};
    test_graph_add(&g, "c", "conv", NULL, NULL, "filters", "2", "kernel", "3");
    test_graph_add(&g, "p", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g, "c2", "conv", NULL, NULL, "filters", "2", "kernel", "3");
    cnn_model_spec m = test_graph_model(&g, (cnn_shape){1, 8, 8});
    cnn_error e = {0};
    cnn_net *net = cnn_net_plan(&m, 2, &e);
    CHECK_MSG(net, "pair net does not plan: %s", e.msg);
    if (!net) return;
    size_t rf[3][2], jump[3][2];
    cnn_net_receptive_fields(net, rf, jump);
    CHECK(rf[1][0] == 3 && rf[1][1] == 3 && jump[1][0] == 1);
    CHECK(rf[2][0] == 5 && rf[2][1] == 5 && jump[2][1] == 1);
    cnn_net_free(net);
}

/* add and concat of a pair's output and a layer before it: sample i of one
 * is not sample i of the other. The message names both inputs. */
static void test_pair_mixed_batches(void)
{
    const char *const kinds[2] = {"add", "concat"};
    for (size_t k = 0; k < 2; k++) {
        test_graph g = {0};
        test_graph_add(&g, "a", "conv", NULL, NULL, "filters", "2", "kernel", "1");
        test_graph_add(&g, "p", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
        test_graph_add(&g, "b", "conv", "input", NULL, "filters", "4", "kernel", "1");
        test_graph_add(&g, "s", kinds[k], "p", "b", NULL, NULL, NULL, NULL);
        cnn_model_spec m = test_graph_model(&g, (cnn_shape){1, 3, 3});
        cnn_error e = {0};
        cnn_net *net = cnn_net_create(&m, 4, &e);
        CHECK_MSG(!net, "%s of a pair and a layer before it builds", kinds[k]);
        cnn_net_free(net);
        char want[256];
        snprintf(want, sizeof want, "layer 's' (%s): input 'p' has batch N/2 but input "
                 "'b' has batch N (each pair layer halves the batch); the inputs of a "
                 "layer must have the same number of samples", kinds[k]);
        CHECK_CONTAINS(e.msg, want);
        CHECK_MSG(e.line == 13 && e.col == 5, "error at %d:%d, expected 13:5", e.line, e.col);
    }
    /* N/4 against N/2: the pair of a pair beside a pair */
    test_graph g = {0};
    test_graph_add(&g, "p", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g, "pp", "pair", NULL, NULL, NULL, NULL, NULL, NULL);
    test_graph_add(&g, "q", "conv", "p", NULL, "filters", "4", "kernel", "1");
    test_graph_add(&g, "s", "concat", "q", "pp", NULL, NULL, NULL, NULL);
    cnn_model_spec m = test_graph_model(&g, (cnn_shape){1, 2, 2});
    cnn_error e = {0};
    cnn_net *net = cnn_net_create(&m, 8, &e);
    CHECK(!net);
    cnn_net_free(net);
    CHECK_CONTAINS(e.msg, "input 'q' has batch N/2 but input 'pp' has batch N/4");
}

int main(void)
{
    test_mse_by_hand();
    test_mse_grad();
    test_nt_xent_by_hand();
    test_nt_xent_grad(6, 5, 0.5f, 1);
    test_nt_xent_grad(6, 5, 0.1f, 2);
    test_nt_xent_grad(8, 3, 1.0f, 3);
    test_nt_xent_identical_pairs(0.5f);
    test_nt_xent_identical_pairs(0.001f);   /* e^1000 would overflow a double */
    test_nt_xent_all_equal();
    test_pair_layout();
    test_pair_batches();
    test_pair_grad();
    test_pair_inference();
    test_pair_receptive_field();
    test_pair_mixed_batches();
    return test_done();
}
