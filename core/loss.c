/*
 * Losses over the network's output (see loss.h). Softmax cross-entropy works
 * in double per sample with the log-sum-exp trick (subtract the largest
 * logit), so neither large nor very negative logits overflow or lose the
 * loss to rounding.
 *
 * With smoothing s over k classes the target is t_j = s/k + (1-s)[j = label]
 * and the sample's loss is sum_j t_j (lse - x_j) = lse - (1-s) x_label
 * - (s/k) sum_j x_j; the gradient of the batch mean is (softmax - t) / n
 * (of a part of a batch: divided by the whole batch's size instead).
 *
 * NT-Xent works on the normalised rows u_i = z_i / max(|z_i|, eps). With
 * s_ik = u_i . u_k / T and p_ik the softmax of row i over k != i, the mean
 * loss L has dL/ds_ik = G_ik = (p_ik - [k = partner]) / rows (G_ii = 0).
 * s_ik moves with both u_i and u_k, so dL/du_i = (1/T) sum_k (G_ik + G_ki)
 * u_k: one product of the symmetrised G with U. Through the normalisation,
 * dz_i = (g_i - u_i (u_i . g_i)) / |z_i| (the part of g_i along u_i only
 * rescales z_i, which does not move u_i), or g_i / eps for a row shorter
 * than eps, where the divisor is the constant eps.
 */
#include "loss.h"

#include <assert.h>
#include <math.h>

#include "parallel.h"

double cnn_loss_softmax_xent(const float *logits, const int *labels, size_t n,
                             size_t k, float smoothing, float *dlogits,
                             size_t *correct)
{
    return cnn_loss_softmax_xent_part(logits, labels, n, n, k, smoothing, dlogits, correct);
}

double cnn_loss_softmax_xent_part(const float *logits, const int *labels, size_t n,
                                  size_t batch, size_t k, float smoothing, float *dlogits,
                                  size_t *correct)
{
    assert(batch >= n && "a part is at most its batch");
    double total = 0;
    size_t hits = 0;
    const double s = smoothing, off = s / (double)k, on = 1.0 - s;
    for (size_t i = 0; i < n; i++) {
        const float *x = logits + i * k;   /* [k] */
        const int label = labels[i];
        assert(label >= 0 && (size_t)label < k && "label out of range");
        size_t best = 0;
        for (size_t j = 1; j < k; j++)
            if (x[j] > x[best])
                best = j;
        hits += best == (size_t)label;
        const double mx = x[best];
        double sum = 0, xsum = 0;
        for (size_t j = 0; j < k; j++) {
            sum += exp((double)x[j] - mx);
            xsum += x[j];
        }
        const double lse = mx + log(sum);
        total += lse - on * x[label] - off * xsum;
        if (dlogits) {
            float *d = dlogits + i * k;    /* [k] */
            const double inv_sum = 1.0 / sum, inv_n = 1.0 / (double)batch;
            for (size_t j = 0; j < k; j++) {
                double t = off + (j == (size_t)label ? on : 0.0);
                d[j] = (float)((exp((double)x[j] - mx) * inv_sum - t) * inv_n);
            }
        }
    }
    if (correct)
        *correct = hits;
    return n ? total / (double)n : 0.0;
}

double cnn_loss_mse(const float *y, const float *target, size_t n, size_t k, float *dy)
{
    const size_t m = n * k;
    if (!m) return 0.0;
    const double scale = 2.0 / (double)m;
    double total = 0;
    for (size_t i = 0; i < m; i++) {
        const double diff = (double)y[i] - (double)target[i];
        total += diff * diff;
        if (dy) dy[i] = (float)(scale * diff);
    }
    return total / (double)m;
}

#define NT_XENT_EPS 1e-12   /* F.normalize's default: rows shorter divide by it */

/* work holds u [rows][d], then s [rows][rows], then norm [rows]. */
size_t cnn_loss_nt_xent_work(size_t rows, size_t d)
{
    return rows * d + rows * rows + rows;
}

/* u [rows][d] = z / max(|z|, eps) row by row; norm [rows] = |z| per row,
 * 0 for a row shorter than eps (divided by the constant eps). */
static void nt_xent_normalise(const float *z, size_t rows, size_t d, float *u,
                              float *norm)
{
    for (size_t i = 0; i < rows; i++) {
        const float *zi = z + i * d;   /* [d] */
        double sq = 0;
        for (size_t j = 0; j < d; j++) sq += (double)zi[j] * zi[j];
        const double len = sqrt(sq), div = len > NT_XENT_EPS ? len : NT_XENT_EPS;
        for (size_t j = 0; j < d; j++) u[i * d + j] = (float)(zi[j] / div);
        norm[i] = len > NT_XENT_EPS ? (float)len : 0.0f;
    }
}

/* The loss of row i from its similarities s [rows] (s[i] is ignored). If
 * g is not NULL, writes g [rows] = dL/ds_i. for the mean loss (g may be s
 * itself). *hit: whether the most similar other row is the partner. */
static double nt_xent_row(const float *s, size_t i, size_t rows, float *g, int *hit)
{
    const size_t partner = i ^ 1;
    size_t best = i ? 0 : 1;   /* the first other row; ties keep the first */
    for (size_t k = best + 1; k < rows; k++)
        if (k != i && s[k] > s[best]) best = k;
    *hit = best == partner;
    const double mx = s[best];
    double sum = 0;
    for (size_t k = 0; k < rows; k++)
        if (k != i) sum += exp((double)s[k] - mx);
    const double loss = mx + log(sum) - (double)s[partner];
    if (g) {
        const double inv_sum = 1.0 / sum, inv_rows = 1.0 / (double)rows;
        for (size_t k = 0; k < rows; k++) {
            double p = k == i ? 0.0 : exp((double)s[k] - mx) * inv_sum;
            g[k] = (float)((p - (k == partner ? 1.0 : 0.0)) * inv_rows);
        }
    }
    return loss;
}

/* dz [rows][d] from G [rows][rows] = dL/ds (symmetrised here, in place),
 * the normalised rows u and the rows' lengths. */
static void nt_xent_backward(float *G, const float *u, const float *norm, size_t rows,
                             size_t d, float temperature, float *dz)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t k = i + 1; k < rows; k++) {
            const float both = G[i * rows + k] + G[k * rows + i];
            G[i * rows + k] = G[k * rows + i] = both;
        }
    /* g = (G + G^T) U / T, straight into dz */
    cnn_gemm(0, 0, rows, d, rows, 1.0f / temperature, G, rows, u, d, 0.0f, dz, d);
    for (size_t i = 0; i < rows; i++) {
        float *g = dz + i * d;           /* [d] */
        const float *ui = u + i * d;     /* [d] */
        if (norm[i] == 0.0f) {
            for (size_t j = 0; j < d; j++) g[j] = (float)(g[j] / NT_XENT_EPS);
            continue;
        }
        double along = 0;
        for (size_t j = 0; j < d; j++) along += (double)ui[j] * g[j];
        for (size_t j = 0; j < d; j++)
            g[j] = (float)(((double)g[j] - along * ui[j]) / norm[i]);
    }
}

double cnn_loss_nt_xent(const float *z, size_t rows, size_t d, float temperature,
                        float *dz, size_t *correct, float *work)
{
    assert(rows >= 2 && rows % 2 == 0 && "NT-Xent takes whole pairs of views");
    assert(temperature > 0 && "NT-Xent's temperature is positive");
    float *u = work;                     /* [rows][d] */
    float *s = u + rows * d;             /* [rows][rows]: s, then dL/ds */
    float *norm = s + rows * rows;       /* [rows] */
    nt_xent_normalise(z, rows, d, u, norm);
    cnn_gemm(0, 1, rows, rows, d, 1.0f / temperature, u, d, u, d, 0.0f, s, rows);
    /* Row i's gradient overwrites s row i, which only row i reads (the
     * rows after it read their own rows of s). */
    double total = 0;
    size_t hits = 0;
    for (size_t i = 0; i < rows; i++) {
        int hit;
        total += nt_xent_row(s + i * rows, i, rows, dz ? s + i * rows : NULL, &hit);
        hits += (size_t)hit;
    }
    if (dz) nt_xent_backward(s, u, norm, rows, d, temperature, dz);
    if (correct) *correct = hits;
    return total / (double)rows;
}
