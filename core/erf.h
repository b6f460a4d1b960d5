/*
 * The effective receptive field (Luo, Li, Urtasun and Zemel, "Understanding
 * the effective receptive field in deep convolutional neural networks",
 * NIPS 2016): how strongly each input pixel moves the centre unit of a
 * layer, measured by back-propagating a unit gradient from that unit.
 */
#ifndef CNN_ERF_H
#define CNN_ERF_H

#include <stddef.h>
#include "net.h"

/* For the n samples already in net->x: forward in evaluation mode, set the
 * gradient of the centre position (all channels) of layer `target`'s output
 * to 1, back-propagate to the input, and add sum_channels |dL/dx| of every
 * sample into map [input h][input w] (zeroed first), divided by n. */
void cnn_erf_map(cnn_net *net, size_t target, size_t n, double *map);

/* Radius (in pixels, Euclidean, around the map's centre of mass) of the
 * smallest disc holding at least `frac` of the map's total mass. */
double cnn_erf_radius(const double *map, size_t h, size_t w, double frac);

#endif
