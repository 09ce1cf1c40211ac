/* Helpers shared by the graph passes (passes.c, qdq.c). */
#ifndef EI_PASSES_H
#define EI_PASSES_H

#include "graph/graph.h"

/* Live nodes reading value v (+1 if v is a graph output). */
int ei__pass_use_count(const ei__graph *g, int v);
/* The one live node reading v (once), or -1 (none, several, or v is a graph output). */
int ei__pass_single_consumer(const ei__graph *g, int v);
/* Every live node input `from` becomes `to`. */
void ei__pass_replace_uses(ei__graph *g, int from, int to);
/* Marks a node dead (its params freed). */
void ei__pass_kill_node(ei__graph *g, ei__node *n);
/* Drops live nodes none of whose outputs is used (one backward sweep over the topological order). */
ei_status ei__pass_dead_code(ei__graph *g, char *err, size_t errlen);
/* Folds QuantizeLinear/DequantizeLinear patterns into integer operators (qdq.c). */
ei_status ei__pass_qdq(ei__graph *g, char *err, size_t errlen);

#endif
