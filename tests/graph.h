/*
 * Model specs built in C for the unit tests, without YAML: a fixed-size
 * table of layers with storage for their inputs and options.
 *
 *     test_graph g = {0};
 *     test_graph_add(&g, "c", "conv", NULL, NULL, "filters", "2", "kernel", "3");
 *     test_graph_add(&g, "s", "add", "c", "input", NULL, NULL, NULL, NULL);
 *     cnn_model_spec m = test_graph_model(&g, (cnn_shape){1, 5, 5});
 *
 * A third or fourth option goes into g.opts[i][2..3] by hand, with
 * g.specs[i].opts.n raised to match.
 */
#ifndef CNN_TEST_GRAPH_H
#define CNN_TEST_GRAPH_H

#include "net.h"

#define TEST_GRAPH_MAX 16

typedef struct test_graph {
    cnn_layer_spec specs[TEST_GRAPH_MAX];
    cnn_opt opts[TEST_GRAPH_MAX][4];
    const char *inputs[TEST_GRAPH_MAX][2];
    size_t n;
} test_graph;

/* Add layer NAME of KIND. in0 and in1 name its inputs (in0 NULL: the
 * previous layer; in1 NULL: one input); k1=v1 and k2=v2 are options
 * (a NULL key: none). Layer i is said to be written at line 10+i, column
 * 5: numbers no default gives, for tests of where a message points. */
void test_graph_add(test_graph *g, const char *name, const char *kind, const char *in0,
                    const char *in1, const char *k1, const char *v1, const char *k2,
                    const char *v2);

/* The model: INPUT per sample, the layers added so far, no label smoothing. */
cnn_model_spec test_graph_model(const test_graph *g, cnn_shape input);

#endif
