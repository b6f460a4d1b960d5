/*
 * Helpers shared by all layer kinds (see layer.h).
 */
#include "layer.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

cnn_param *cnn_layer_param(cnn_layer *l, const char *name, size_t ndim,
                           const size_t *dims, cnn_init init, size_t fan_in,
                           size_t fan_out, int trainable, int decay)
{
    assert(l->nparams < CNN_MAX_PARAMS && "a layer declares at most CNN_MAX_PARAMS tensors");
    assert(ndim >= 1 && ndim <= 4);
    cnn_param *p = &l->params[l->nparams++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->size = 1;
    for (size_t i = 0; i < ndim; i++) {
        p->dims[i] = dims[i];
        p->size *= dims[i];
    }
    p->init = init;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    p->trainable = trainable;
    p->decay = decay;
    return p;
}

cnn_status cnn_layer_parse_none(cnn_layer *l, cnn_opts *o, cnn_error *e)
{
    (void)l; (void)o; (void)e;
    return CNN_OK;
}

cnn_status cnn_layer_infer_same(cnn_layer *l, cnn_error *e)
{
    (void)e;
    l->out = l->in[0];
    l->macs = 0;
    return CNN_OK;
}
