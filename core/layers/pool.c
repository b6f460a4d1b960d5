/*
 * Window options and geometry shared by the pooling layers (see pool.h).
 */
#include "pool.h"

#include <stdio.h>

cnn_status cnn_pool_parse(cnn_pool_window *p, cnn_opts *o, cnn_error *e)
{
    long size[2], stride[2], pad[2];
    cnn_status st;
    int has_stride = cnn_opts_find(o, "stride") != NULL;
    if ((st = cnn_opts_pair(o, "size", 2, 1, 1L << 20, size, e)) ||
        (st = cnn_opts_pair(o, "stride", 1, 1, 1L << 20, stride, e)) ||
        (st = cnn_opts_pair(o, "pad", 0, 0, 1L << 20, pad, e)))
        return st;
    if (!has_stride) {
        stride[0] = size[0];
        stride[1] = size[1];
    }
    p->kh = (size_t)size[0];
    p->kw = (size_t)size[1];
    p->sh = (size_t)stride[0];
    p->sw = (size_t)stride[1];
    p->ph = (size_t)pad[0];
    p->pw = (size_t)pad[1];
    return CNN_OK;
}

cnn_status cnn_pool_infer(cnn_pool_window *p, cnn_layer *l, const char *kind,
                          cnn_error *e)
{
    cnn_shape in = l->in[0];
    if (2 * p->ph > p->kh || 2 * p->pw > p->kw)
        return cnn_error_set(e, CNN_ERR_CONFIG, "layer '%s' (%s): pad %zux%zu must "
                             "be at most half the %zux%zu window", l->name, kind,
                             p->ph, p->pw, p->kh, p->kw);
    if (in.h + 2 * p->ph < p->kh || in.w + 2 * p->pw < p->kw)
        return cnn_error_set(e, CNN_ERR_SHAPE, "layer '%s' (%s): a %zux%zu window "
                             "with pad %zux%zu does not fit its input %zux%zux%zu "
                             "(c x h x w)", l->name, kind, p->kh, p->kw, p->ph, p->pw,
                             in.c, in.h, in.w);
    p->c = in.c;
    p->h = in.h;
    p->w = in.w;
    p->oh = (in.h + 2 * p->ph - p->kh) / p->sh + 1;
    p->ow = (in.w + 2 * p->pw - p->kw) / p->sw + 1;
    l->out = (cnn_shape){in.c, p->oh, p->ow};
    l->macs = 0;
    l->rf_kernel[0] = p->kh;
    l->rf_kernel[1] = p->kw;
    l->rf_stride[0] = p->sh;
    l->rf_stride[1] = p->sw;
    return CNN_OK;
}

void cnn_pool_clip(const cnn_pool_window *p, size_t oy, size_t ox, long *y0,
                   long *y1, long *x0, long *x1)
{
    *y0 = (long)(oy * p->sh) - (long)p->ph;
    *y1 = *y0 + (long)p->kh;
    *x0 = (long)(ox * p->sw) - (long)p->pw;
    *x1 = *x0 + (long)p->kw;
    if (*y0 < 0) *y0 = 0;
    if (*y1 > (long)p->h) *y1 = (long)p->h;
    if (*x0 < 0) *x0 = 0;
    if (*x1 > (long)p->w) *x1 = (long)p->w;
}

void cnn_pool_describe(const cnn_pool_window *p, char *buf, size_t n)
{
    char stride[48], pad[48] = "";
    if (p->sh == p->sw) snprintf(stride, sizeof stride, "%zu", p->sh);
    else snprintf(stride, sizeof stride, "%zux%zu", p->sh, p->sw);
    if (p->ph == p->pw && p->ph) snprintf(pad, sizeof pad, " p%zu", p->ph);
    else if (p->ph != p->pw) snprintf(pad, sizeof pad, " p%zux%zu", p->ph, p->pw);
    snprintf(buf, n, "%zux%zu s%s%s", p->kh, p->kw, stride, pad);
}
