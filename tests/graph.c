/* Model specs built in C for the unit tests (graph.h). */
#include "graph.h"

#include <assert.h>

void test_graph_add(test_graph *g, const char *name, const char *kind, const char *in0,
                    const char *in1, const char *k1, const char *v1, const char *k2,
                    const char *v2)
{
    assert(g->n < TEST_GRAPH_MAX);
    const size_t i = g->n++;
    cnn_layer_spec *s = &g->specs[i];
    *s = (cnn_layer_spec){.name = name, .kind = kind, .line = (int)i + 10, .col = 5};
    g->inputs[i][0] = in0;
    g->inputs[i][1] = in1;
    if (in0) {
        s->inputs = g->inputs[i];
        s->ninputs = in1 ? 2 : 1;
    }
    s->opts.items = g->opts[i];
    if (k1) g->opts[i][s->opts.n++] = (cnn_opt){.key = k1, .text = v1};
    if (k2) g->opts[i][s->opts.n++] = (cnn_opt){.key = k2, .text = v2};
}

cnn_model_spec test_graph_model(const test_graph *g, cnn_shape input)
{
    return (cnn_model_spec){input, g->specs, g->n, 0};
}
