/* Classification output for the public API: ei_softmax_topk (the top-k classes of one logits row with their
 * softmax probabilities), shared by `edgeinfer run --top` and the server's classification extension. */
#include <math.h>

#include "edgeinfer.h"

void ei_softmax_topk(const float *row, int64_t classes, int k, int *idx, float *prob) {
  if (classes <= 0) return;
  float mx = row[0];
  for (int64_t c = 1; c < classes; c++) mx = row[c] > mx ? row[c] : mx;
  double sum = 0;
  for (int64_t c = 0; c < classes; c++) sum += exp((double)row[c] - mx);
  for (int j = 0; j < k && j < classes; j++) {
    int64_t best = -1;
    for (int64_t c = 0; c < classes; c++) {
      int taken = 0;
      for (int q = 0; q < j; q++) taken |= idx[q] == c;
      if (!taken && (best < 0 || row[c] > row[best])) best = c;
    }
    idx[j] = (int)best;
    prob[j] = (float)(exp((double)row[best] - mx) / sum);
  }
}
