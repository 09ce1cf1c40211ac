/* edgeinfer inspect: what a model is after loading and optimization, and its arena plan. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *help =
    "usage: edgeinfer inspect MODEL [--batch B] [--shape [NAME=]DIMS]... [--nodes]\n"
    "  prints inputs, outputs, the op histogram after passes, parameters, MACs per image and the arena plan\n"
    "  --nodes   list every node with its kernel\n";

static void print_info(const char *what, const ei_value_info *vi) {
  printf("  %s '%s': %s [", what, vi->name, ei_dtype_name(vi->dtype));
  for (int d = 0; d < vi->rank; d++) {
    if (vi->dims[d] >= 0) printf("%s%lld", d ? ", " : "", (long long)vi->dims[d]);
    else printf("%s%s", d ? ", " : "", vi->dim_names[d] ? vi->dim_names[d] : "?");
  }
  printf("]\n");
}

int cmd_inspect(int argc, char **argv) {
  cli_common c;
  cli_common_init(&c);
  const char *model = NULL;
  int list_nodes = 0;
  for (int i = 1; i < argc; i++) {
    int r = cli_common_option(&c, argc, argv, &i);
    if (r < 0) return 2;
    if (r) continue;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("%s", help);
      return 0;
    } else if (!strcmp(argv[i], "--nodes")) {
      list_nodes = 1;
    } else if (argv[i][0] == '-') {
      return cli_die("inspect: unknown option '%s'", argv[i]), 2;
    } else {
      model = argv[i];
    }
  }
  if (!model) return cli_die("inspect: no model given"), 2;
  ei_model *m;
  double load_ms;
  if (cli_load_model(model, &c, &m, &load_ms)) return 1;
  ei_model_stats st;
  ei_model_get_stats(m, &st);
  printf("model %s\n  producer: %s; IR version %d, opset %d; loaded in %.1f ms\n", model, st.producer, st.ir_version,
         st.opset, load_ms);
  for (int i = 0; i < ei_model_input_count(m); i++) {
    ei_value_info vi;
    ei_model_input_info(m, i, &vi);
    print_info("input", &vi);
  }
  for (int i = 0; i < ei_model_output_count(m); i++) {
    ei_value_info vi;
    ei_model_output_info(m, i, &vi);
    print_info("output", &vi);
  }
  printf("nodes: %d in the file, %d after passes\n", st.nodes_imported, st.nodes);
  /* Plan at the requested batch first: value types (int8 or float) are known from the plan. */
  cli_inputs in;
  ei_session *s = NULL;
  int rc = 0, planned = 0;
  char err[1024];
  if (cli_make_inputs(m, &c, &in) == 0) {
    if (ei_session_create(m, NULL, &s, err, sizeof err) == EI_OK) {
      if (ei_session_plan(s, in.n, in.t, err, sizeof err) == EI_OK) planned = 1;
      else rc = cli_die("planning failed: %s", err);
    }
  } else {
    rc = 1;
  }
  int n = ei_model_node_count(m), nint8 = 0, nfloat = 0, first_q = -1, last_dq = -1;
  ei_node_info *infos = calloc((size_t)n + 1, sizeof(ei_node_info));
  for (int i = 0; infos && i < n; i++) {
    if (planned) ei_session_node_info(s, i, &infos[i]);
    else ei_model_node_info(m, i, &infos[i]);
    if (!strcmp(infos[i].op_type, "QuantizeLinear") && first_q < 0) first_q = i;
    if (!strcmp(infos[i].op_type, "DequantizeLinear")) last_dq = i;
  }
  /* op histogram */
  const char **ops = calloc((size_t)n + 1, sizeof(char *));
  int *counts = calloc((size_t)n + 1, sizeof(int)), nops = 0;
  char (*keys)[96] = calloc((size_t)n + 1, 96);
  for (int i = 0; infos && ops && counts && keys && i < n; i++) {
    const ei_node_info *ni = &infos[i];
    char key[96];
    snprintf(key, sizeof key, "%s%s%s", ni->op_type, ni->fused ? "+" : "", ni->fused ? ni->fused : "");
    int k = 0;
    while (k < nops && strcmp(keys[k], key)) k++;
    if (k == nops) {
      snprintf(keys[nops], 96, "%s", key);
      ops[nops++] = keys[k];
    }
    counts[k]++;
    nint8 += ni->is_int8;
    if (!ni->is_int8 && i > first_q && i < last_dq && first_q >= 0) nfloat++;
  }
  printf("op histogram after passes:\n");
  for (int k = 0; k < nops; k++) printf("  %-28s %d\n", ops[k], counts[k]);
  free(ops);
  free(counts);
  free(keys);
  if (planned) {
    printf("integer nodes: %d of %d", nint8, n);
    if (first_q >= 0 && last_dq > first_q)
      printf("; float nodes between the first QuantizeLinear and the last DequantizeLinear: %d", nfloat);
    printf("\n");
  }
  printf("parameters: %lld (%.2f MB of weights and constants held)\n", (long long)st.params, st.weight_bytes / 1e6);
  if (list_nodes && infos) {
    printf("nodes:\n");
    for (int i = 0; i < n; i++) {
      const ei_node_info *ni = &infos[i];
      printf("  %4d  %-5s %-24s %-12s %-28s %s\n", i, !planned ? "" : ni->is_int8 ? "int8" : "float", ni->op_type,
             ni->fused ? ni->fused : "", ni->kernel ? ni->kernel : "", ni->name);
    }
  }
  free(infos);
  if (planned) {
    ei_plan_stats ps;
    ei_session_plan_stats(s, &ps);
    int64_t batch = in.n && in.t[0].rank ? in.t[0].dims[0] : 1;
    printf("plan for batch %lld: %.3f GMAC per image\n", (long long)batch, ps.macs / 1e9 / (batch ? batch : 1));
    printf("arena: %zu bytes (%.2f MB) for %d intermediate tensors; naive sum %zu bytes (%.2f MB), %.1f%% of it\n",
           ps.arena_bytes, ps.arena_bytes / 1e6, ps.tensors, ps.naive_bytes, ps.naive_bytes / 1e6,
           ps.naive_bytes ? 100.0 * ps.arena_bytes / ps.naive_bytes : 0.0);
  }
  ei_session_destroy(s);
  cli_free_inputs(&in);
  ei_model_destroy(m);
  return rc;
}
