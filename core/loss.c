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
 */
#include "loss.h"

#include <assert.h>
#include <math.h>

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
