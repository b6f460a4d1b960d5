/*
 * The rasteriser behind `cnn plot` (see plot.h). The font is drawn for this
 * program: each glyph is 5 columns by 7 rows above the baseline, plus 2 rows
 * below it for the descenders of g, j, p, q, y and the comma, written as
 * rows of '#' (ink) and '.' (paper).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"

#define GLYPH_W 5
#define GLYPH_ROWS 9   /* 7 above the baseline, 2 below */

typedef struct glyph {
    char ch;
    const char *rows;   /* 7 or 9 rows of 5 characters, '#' = ink */
} glyph;

static const glyph font[] = {
    {'0', ".###." "#...#" "#..##" "#.#.#" "##..#" "#...#" ".###."},
    {'1', "..#.." ".##.." "..#.." "..#.." "..#.." "..#.." ".###."},
    {'2', ".###." "#...#" "....#" "...#." "..#.." ".#..." "#####"},
    {'3', "#####" "...#." "..#.." "...#." "....#" "#...#" ".###."},
    {'4', "...#." "..##." ".#.#." "#..#." "#####" "...#." "...#."},
    {'5', "#####" "#...." "####." "....#" "....#" "#...#" ".###."},
    {'6', "..##." ".#..." "#...." "####." "#...#" "#...#" ".###."},
    {'7', "#####" "....#" "...#." "..#.." ".#..." ".#..." ".#..."},
    {'8', ".###." "#...#" "#...#" ".###." "#...#" "#...#" ".###."},
    {'9', ".###." "#...#" "#...#" ".####" "....#" "...#." ".##.."},
    {'a', "....." "....." ".###." "....#" ".####" "#...#" ".####"},
    {'b', "#...." "#...." "####." "#...#" "#...#" "#...#" "####."},
    {'c', "....." "....." ".###." "#...#" "#...." "#...#" ".###."},
    {'d', "....#" "....#" ".####" "#...#" "#...#" "#...#" ".####"},
    {'e', "....." "....." ".###." "#...#" "#####" "#...." ".###."},
    {'f', "..##." ".#..." "####." ".#..." ".#..." ".#..." ".#..."},
    {'g', "....." "....." ".####" "#...#" "#...#" "#...#" ".####" "....#" ".###."},
    {'h', "#...." "#...." "####." "#...#" "#...#" "#...#" "#...#"},
    {'i', "..#.." "....." ".##.." "..#.." "..#.." "..#.." ".###."},
    {'j', "...#." "....." "..##." "...#." "...#." "...#." "...#." "#..#." ".##.."},
    {'k', "#...." "#...." "#..#." "#.#.." "##..." "#.#.." "#..#."},
    {'l', ".##.." "..#.." "..#.." "..#.." "..#.." "..#.." ".###."},
    {'m', "....." "....." "##.#." "#.#.#" "#.#.#" "#.#.#" "#.#.#"},
    {'n', "....." "....." "####." "#...#" "#...#" "#...#" "#...#"},
    {'o', "....." "....." ".###." "#...#" "#...#" "#...#" ".###."},
    {'p', "....." "....." "####." "#...#" "#...#" "#...#" "####." "#...." "#...."},
    {'q', "....." "....." ".####" "#...#" "#...#" "#...#" ".####" "....#" "....#"},
    {'r', "....." "....." "#.##." "##..#" "#...." "#...." "#...."},
    {'s', "....." "....." ".####" "#...." ".###." "....#" "####."},
    {'t', ".#..." ".#..." "####." ".#..." ".#..." ".#..#" "..##."},
    {'u', "....." "....." "#...#" "#...#" "#...#" "#..##" ".##.#"},
    {'v', "....." "....." "#...#" "#...#" "#...#" ".#.#." "..#.."},
    {'w', "....." "....." "#...#" "#...#" "#.#.#" "#.#.#" ".#.#."},
    {'x', "....." "....." "#...#" ".#.#." "..#.." ".#.#." "#...#"},
    {'y', "....." "....." "#...#" "#...#" "#...#" "#...#" ".####" "....#" ".###."},
    {'z', "....." "....." "#####" "...#." "..#.." ".#..." "#####"},
    {'.', "....." "....." "....." "....." "....." ".##.." ".##.."},
    {',', "....." "....." "....." "....." "....." ".##.." ".##.." "..#.." ".#..."},
    {'-', "....." "....." "....." ".###." "....." "....." "....."},
    {'+', "....." "..#.." "..#.." "#####" "..#.." "..#.." "....."},
    {'%', "##..." "##..#" "...#." "..#.." ".#..." "#..##" "...##"},
    {'(', "...#." "..#.." ".#..." ".#..." ".#..." "..#.." "...#."},
    {')', ".#..." "..#.." "...#." "...#." "...#." "..#.." ".#..."},
    {':', "....." ".##.." ".##.." "....." ".##.." ".##.." "....."},
    {'/', "....." "....#" "...#." "..#.." ".#..." "#...." "....."},
    {'_', "....." "....." "....." "....." "....." "....." "....." "....." "#####"},
    {'=', "....." "....." "#####" "....." "#####" "....." "....."},
};

static const char *glyph_rows(char ch, size_t *nrows)
{
    ch = (char)tolower((unsigned char)ch);
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].ch == ch) {
            *nrows = strlen(font[i].rows) / GLYPH_W;
            return font[i].rows;
        }
    return NULL;
}

int plot_canvas_create(plot_canvas *c, int w, int h)
{
    c->w = w;
    c->h = h;
    c->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!c->rgb) return -1;
    memset(c->rgb, 255, (size_t)w * (size_t)h * 3);
    return 0;
}

void plot_canvas_free(plot_canvas *c)
{
    free(c->rgb);
    c->rgb = NULL;
}

static void pixel(plot_canvas *c, int x, int y, uint32_t rgb)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    unsigned char *p = c->rgb + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
    p[0] = (unsigned char)(rgb >> 16);
    p[1] = (unsigned char)(rgb >> 8);
    p[2] = (unsigned char)rgb;
}

void plot_rect(plot_canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb)
{
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) pixel(c, x, y, rgb);
}

void plot_line(plot_canvas *c, int x0, int y0, int x1, int y1, int thick, uint32_t rgb)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy, lo = -(thick - 1) / 2, hi = thick / 2;
    for (;;) {
        plot_rect(c, x0 + lo, y0 + lo, x0 + hi, y0 + hi, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

void plot_disc(plot_canvas *c, int cx, int cy, int r, uint32_t rgb)
{
    for (int y = -r; y <= r; y++)
        for (int x = -r; x <= r; x++)
            if (x * x + y * y <= r * r + r) pixel(c, cx + x, cy + y, rgb);
}

int plot_text_height(int scale)
{
    return GLYPH_ROWS * scale;
}

int plot_text_width(const char *s, int scale)
{
    size_t n = strlen(s);
    return n ? (int)n * (GLYPH_W + 1) * scale - scale : 0;
}

/* Draw text; `up` rotates it 90 degrees anticlockwise (see plot.h). */
static void draw_text(plot_canvas *c, int x, int y, const char *s, int scale, uint32_t rgb,
                      int up)
{
    for (int k = 0; s[k]; k++) {
        size_t nrows;
        const char *rows = glyph_rows(s[k], &nrows);
        if (!rows) continue;
        for (size_t r = 0; r < nrows; r++)
            for (int col = 0; col < GLYPH_W; col++) {
                if (rows[r * GLYPH_W + (size_t)col] != '#') continue;
                int gx = (k * (GLYPH_W + 1) + col) * scale, gy = (int)r * scale;
                for (int a = 0; a < scale; a++)
                    for (int b = 0; b < scale; b++) {
                        if (up) pixel(c, x + gy + b, y - gx - a, rgb);
                        else pixel(c, x + gx + a, y + gy + b, rgb);
                    }
            }
    }
}

void plot_text(plot_canvas *c, int x, int y, const char *s, int scale, uint32_t rgb)
{
    draw_text(c, x, y, s, scale, rgb, 0);
}

void plot_text_up(plot_canvas *c, int x, int y, const char *s, int scale, uint32_t rgb)
{
    draw_text(c, x, y, s, scale, rgb, 1);
}
