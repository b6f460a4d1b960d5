/*
 * A tiny RGB rasteriser for `cnn plot`: a canvas, filled rectangles, thick
 * Bresenham lines, markers, and text in an embedded 5x7 bitmap font (with
 * two rows for descenders) drawn at an integer scale, horizontal or rotated
 * to read upwards.
 */
#ifndef CNN_PLOT_H
#define CNN_PLOT_H

#include <stdint.h>

typedef struct plot_canvas {
    int w, h;
    unsigned char *rgb;   /* [h][w][3] */
} plot_canvas;

/* Colours are 0xRRGGBB. */
#define PLOT_WHITE 0xffffffu
#define PLOT_BLACK 0x000000u

/* Allocate a w x h canvas filled with white; returns 0, or -1 when out of
 * memory. */
int plot_canvas_create(plot_canvas *c, int w, int h);
void plot_canvas_free(plot_canvas *c);

/* Filled rectangle with corners (x0, y0) and (x1, y1), both inclusive;
 * pixels outside the canvas are skipped, as in every drawing function. */
void plot_rect(plot_canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb);

/* A line from (x0, y0) to (x1, y1), `thick` pixels wide (a square pen). */
void plot_line(plot_canvas *c, int x0, int y0, int x1, int y1, int thick, uint32_t rgb);

/* Filled disc of radius r centred on (cx, cy). */
void plot_disc(plot_canvas *c, int cx, int cy, int r, uint32_t rgb);

/* Height of a line of text at `scale` (cap height plus descender) and the
 * width of `s` (each glyph 5 pixels plus 1 of spacing, times scale, less
 * the trailing spacing). Characters without a glyph draw as blanks;
 * capitals draw as small letters. */
int plot_text_height(int scale);
int plot_text_width(const char *s, int scale);

/* Draw `s` with the top-left corner of its first glyph cell at (x, y). */
void plot_text(plot_canvas *c, int x, int y, const char *s, int scale, uint32_t rgb);

/* Draw `s` rotated 90 degrees anticlockwise, reading upwards: the text
 * starts at row y and its glyph tops face column x (the text occupies
 * columns x .. x + plot_text_height - 1 and rows y - width + 1 .. y). */
void plot_text_up(plot_canvas *c, int x, int y, const char *s, int scale, uint32_t rgb);

#endif
