/*
 * The layer registry: every layer kind by its YAML name. Adding a kind is a
 * new file in this folder, one line in core/layers/meson.build, and one line
 * in each list below.
 */
#include "../layer.h"

#include <string.h>

extern const cnn_layer_kind cnn_layer_conv, cnn_layer_dense, cnn_layer_flatten,
    cnn_layer_maxpool, cnn_layer_avgpool, cnn_layer_globalavgpool,
    cnn_layer_relu, cnn_layer_leaky_relu, cnn_layer_sigmoid, cnn_layer_tanh,
    cnn_layer_softmax, cnn_layer_dropout, cnn_layer_batchnorm, cnn_layer_add,
    cnn_layer_concat, cnn_layer_layernorm, cnn_layer_noise, cnn_layer_upsample,
    cnn_layer_conv_transpose, cnn_layer_pair;

const cnn_layer_kind *const cnn_layer_kinds[] = {
    &cnn_layer_conv,
    &cnn_layer_dense,
    &cnn_layer_flatten,
    &cnn_layer_maxpool,
    &cnn_layer_avgpool,
    &cnn_layer_globalavgpool,
    &cnn_layer_relu,
    &cnn_layer_leaky_relu,
    &cnn_layer_sigmoid,
    &cnn_layer_tanh,
    &cnn_layer_softmax,
    &cnn_layer_dropout,
    &cnn_layer_batchnorm,
    &cnn_layer_add,
    &cnn_layer_concat,
    &cnn_layer_layernorm,
    &cnn_layer_noise,
    &cnn_layer_upsample,
    &cnn_layer_conv_transpose,
    &cnn_layer_pair,
};

const size_t cnn_layer_kind_count = sizeof cnn_layer_kinds / sizeof cnn_layer_kinds[0];

const cnn_layer_kind *cnn_layer_kind_find(const char *name)
{
    for (size_t i = 0; i < cnn_layer_kind_count; i++)
        if (!strcmp(cnn_layer_kinds[i]->name, name)) return cnn_layer_kinds[i];
    return NULL;
}
