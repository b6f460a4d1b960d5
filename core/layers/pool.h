/*
 * What maxpool and avgpool share: the window options (size, stride, pad),
 * the output geometry, and clipping a window to its input plane.
 */
#ifndef CNN_POOL_H
#define CNN_POOL_H

#include "layer.h"

typedef struct cnn_pool_window {
    size_t kh, kw, sh, sw, ph, pw;   /* window, stride, padding */
    size_t c, h, w, oh, ow;          /* input and output geometry */
} cnn_pool_window;

/* Read size (n or [h, w], default 2), stride (default = size) and pad
 * (default 0). */
cnn_status cnn_pool_parse(cnn_pool_window *p, cnn_opts *o, cnn_error *e);

/* Check the window against l->in[0] (pad at most half the window, as in
 * PyTorch; the window must fit the padded input), then set the geometry
 * and l->out. Messages name the layer and `kind`. */
cnn_status cnn_pool_infer(cnn_pool_window *p, cnn_layer *l, const char *kind,
                          cnn_error *e);

/* The window of output (oy, ox) clipped to the input: rows [*y0, *y1),
 * columns [*x0, *x1). */
void cnn_pool_clip(const cnn_pool_window *p, size_t oy, size_t ox, long *y0,
                   long *y1, long *x0, long *x1);

/* "3x3 s2 p1" for `cnn summary`. */
void cnn_pool_describe(const cnn_pool_window *p, char *buf, size_t n);

#endif
