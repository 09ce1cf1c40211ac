/* view2d: the 2-D geometry of a 1-D or 2-D conv (1-D as height 1), shared by the fast conv paths
 * (conv_fast.c: GEMM, im2col and Winograd; dwconv_fast.c: depthwise). */
#ifndef EI_KERNELS_REF_CONV_VIEW_H
#define EI_KERNELS_REF_CONV_VIEW_H
#include <stdint.h>

#include "kernels/ref/nn.h"

typedef struct view2d {
  int64_t H, W, OH, OW, kh, kw, sh, sw, dh, dw, pt, pl;
} view2d;

static inline void ei__conv_view(const ei__nn_geom *g, view2d *v) {
  if (g->S == 1) {
    v->H = v->OH = v->kh = v->sh = v->dh = 1;
    v->pt = 0;
    v->W = g->in[0];
    v->OW = g->out[0];
    v->kw = g->k[0];
    v->sw = g->s[0];
    v->dw = g->d[0];
    v->pl = g->pb[0];
  } else {
    v->H = g->in[0];
    v->W = g->in[1];
    v->OH = g->out[0];
    v->OW = g->out[1];
    v->kh = g->k[0];
    v->kw = g->k[1];
    v->sh = g->s[0];
    v->sw = g->s[1];
    v->dh = g->d[0];
    v->dw = g->d[1];
    v->pt = g->pb[0];
    v->pl = g->pb[1];
  }
}

#endif
