/*
 * Weights from PyTorch. fixtures/torch2cnn/resnet.cnn is a small ResNet in
 * torchvision's layout (a 7x7 stem with max pooling, a basic block, a basic
 * block with a projection shortcut, two bottleneck blocks, global average
 * pooling, a dense head), randomly initialised in PyTorch with random
 * batch-norm statistics and converted by scripts/torch2cnn.py;
 * scripts/make-torch2cnn-fixture.py wrote it with the input input.f32
 * ([2][3][24][24]) and PyTorch's logits logits.f32 ([2][5]), little-endian
 * float32. cnn must take every tensor of the file with its exact shape and,
 * in evaluation mode, give PyTorch's logits within 1e-4 of the largest one.
 */
#include "harness.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config.h"
#include "net.h"

static const char *fixture(const char *name)
{
    static char path[1024];
    const char *dir = getenv("FIXTURES");
    snprintf(path, sizeof path, "%s/torch2cnn/%s", dir ? dir : "tests/fixtures", name);
    return path;
}

/* A whole file of little-endian float32 values; *n gets their count.
 * Returns NULL (after a failed check) if it cannot be read. */
static float *read_f32(const char *name, size_t *n)
{
    const char *path = fixture(name);
    FILE *f = fopen(path, "rb");
    unsigned char *raw = NULL;
    float *v = NULL;
    long len = -1;
    if (f && !fseek(f, 0, SEEK_END)) len = ftell(f);
    if (len <= 0 || len % 4 || fseek(f, 0, SEEK_SET) ||
        !(raw = malloc((size_t)len)) || !(v = malloc((size_t)len)) ||
        fread(raw, 1, (size_t)len, f) != (size_t)len) {
        CHECK_MSG(0, "cannot read %s as float32 values", path);
        free(v);
        v = NULL;
    } else {
        *n = (size_t)len / 4;
        for (size_t i = 0; i < *n; i++) {   /* [n] float32 (host order) */
            const unsigned char *b = raw + 4 * i;
            uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                         (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
            memcpy(&v[i], &u, sizeof u);
        }
    }
    free(raw);
    if (f) fclose(f);
    return v;
}

/* Copy every parameter and buffer of the net from the checkpoint, shapes
 * compared dimension by dimension; returns the number of tensors taken. */
static size_t load_params(cnn_net *net, const cnn_checkpoint *ck)
{
    size_t taken = 0;
    for (size_t t = 0; t < net->nlayers; t++) {
        cnn_layer *l = &net->layers[t];
        for (size_t j = 0; j < l->nparams; j++) {
            cnn_param *p = &l->params[j];
            char name[CNN_NAME_MAX + 32];
            snprintf(name, sizeof name, "%s.%s", l->name, p->name);
            const cnn_ckpt_tensor *tt = cnn_checkpoint_find(ck, name);
            int same = tt && tt->ndim == p->ndim && tt->size == p->size;
            for (size_t d = 0; same && d < p->ndim; d++) same = tt->dims[d] == p->dims[d];
            CHECK_MSG(same, "tensor '%s': %s", name, tt ? "shape differs" : "missing");
            if (!same) continue;
            memcpy(p->data, tt->data, p->size * sizeof *p->data);
            taken++;
        }
    }
    return taken;
}

int main(void)
{
    cnn_checkpoint ck = {0};
    cnn_config cfg = {0};
    cnn_error e = {0};
    cnn_net *net = NULL;
    size_t nin = 0, nwant = 0;
    float *in = read_f32("input.f32", &nin);     /* [n][3][24][24] */
    float *want = read_f32("logits.f32", &nwant); /* [n][5] */
    char buf[256];

    if (!in || !want) goto done;
    if (cnn_checkpoint_read(fixture("resnet.cnn"), &ck, &e)) {
        CHECK_MSG(0, "%s", e.msg);
        goto done;
    }
    CHECK(!cnn_checkpoint_meta(&ck, "format", buf, sizeof buf) &&
          !strcmp(buf, "cnn-checkpoint"));
    CHECK(!cnn_checkpoint_meta(&ck, "nclasses", buf, sizeof buf) && !strcmp(buf, "5"));
    CHECK(!cnn_checkpoint_meta(&ck, "mean", buf, sizeof buf) &&
          !strcmp(buf, "0.485 0.456 0.406"));
    if (cnn_config_parse(ck.config, strlen(ck.config), "resnet.cnn (embedded config)",
                         NULL, 0, &cfg, &e)) {
        CHECK_MSG(0, "%s:%d:%d: %s", e.file, e.line, e.col, e.msg);
        goto done;
    }
    size_t insize = cnn_shape_size(cfg.model.input);
    size_t n = nin / insize;
    CHECK_MSG(n >= 1 && n * insize == nin, "input.f32 holds %zu values, not a "
              "whole number of %zu-value images", nin, insize);
    if (!(net = cnn_net_create(&cfg.model, n ? n : 1, &e))) {
        CHECK_MSG(0, "%s", e.msg);
        goto done;
    }
    size_t taken = load_params(net, &ck);
    CHECK_MSG(taken == ck.ntensors, "the net took %zu of the checkpoint's %zu tensors",
              taken, ck.ntensors);

    size_t classes = cnn_shape_size(cnn_net_output(net)->out);
    CHECK_MSG(classes == 5 && nwant == n * classes,
              "logits.f32 holds %zu values, the net gives %zu x %zu", nwant, n, classes);
    if (test_failures) goto done;
    memcpy(net->x, in, nin * sizeof *in);
    cnn_net_forward(net, n, 0);
    const float *got = cnn_net_output(net)->y;  /* [n][classes] */
    double scale = 0;
    for (size_t i = 0; i < nwant; i++) scale = fmax(scale, fabs(want[i]));
    double worst = check_floats("logits vs PyTorch (eval mode)", got, want, nwant,
                                1e-4 * scale);
    printf("largest |logit| %.4g, largest difference %.3g of it\n", scale,
           scale > 0 ? worst / scale : worst);

done:
    cnn_net_free(net);
    cnn_config_free(&cfg);
    cnn_checkpoint_free(&ck);
    free(in);
    free(want);
    return test_done();
}
