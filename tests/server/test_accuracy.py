#!/usr/bin/python3
"""tests/server/test_accuracy.py: served accuracy of the Fashion-MNIST model behind /classify.

usage: test_accuracy.py EDGEINFER SOURCE_DIR [N=1000]

The first N test images of Debian's dataset-fashion-mnist are sent as 8-bit grey PNG files to
POST /v2/models/fashion/classify?k=1 (4 client threads, each on its own keep-alive connection, so dynamic batching
is used) and the predictions compared with `edgeinfer run` on the same pixels (pixel/255, one batch): the served
accuracy must equal the float accuracy of `edgeinfer run`, every prediction must agree, and each top-1 score must
be the softmax probability of the reference logits within 1e-5.
"""
import json
import os
import sys
import tempfile
import threading

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import Server, check, done, fashion_test_images, make_repo, png_grey, run_reference  # noqa: E402

EXE, SRC = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
THREADS = 4


def main():
    tmp = tempfile.mkdtemp(prefix="ei-serve-acc-")
    repo = os.path.join(tmp, "repo")
    make_repo(SRC, repo)
    imgs, labels = fashion_test_images(N)
    check(len(imgs) == N, "%d test images from dataset-fashion-mnist" % N)
    x = (imgs.astype(np.float32) / np.float32(255.0)).reshape(N, 1, 28, 28)
    logits = run_reference(EXE, os.path.join(repo, "fashion", "1", "model.onnx"), x, tmp)["logits"].reshape(N, 10)
    ref_pred = logits.argmax(1)
    e = np.exp(logits - logits.max(1, keepdims=True))
    ref_prob = e / e.sum(1, keepdims=True)
    ref_acc = float((ref_pred == labels).mean())

    s = Server(EXE, repo, tmp, "--max-queue", "256")
    pred = np.full(N, -1)
    score = np.zeros(N)
    errors = []

    def worker(k):
        c = s.conn()
        for i in range(k, N, THREADS):
            try:
                st, _, b = s.h1("POST", "/v2/models/fashion/classify?k=1", png_grey(imgs[i]),
                                {"Content-Type": "image/png"}, conn=c)
                r = json.loads(b)
                if st != 200:
                    errors.append("image %d: %d %s" % (i, st, r))
                    continue
                pred[i] = r["classes"][0]["index"]
                score[i] = r["classes"][0]["score"]
            except Exception as ex:  # noqa: BLE001
                errors.append("image %d: %s" % (i, ex))
                c = s.conn()
        c.close()

    try:
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(not errors, "every classify request answered 200 (%s)" % errors[:3])
        acc = float((pred == labels).mean())
        agree = int((pred == ref_pred).sum())
        print("served accuracy %.4f, `edgeinfer run` float accuracy %.4f, %d/%d predictions agree" %
              (acc, ref_acc, agree, N))
        check(agree == N, "served predictions agree with `edgeinfer run` (%d/%d)" % (agree, N))
        check(abs(acc - ref_acc) < 1e-9 and acc > 0.85, "served accuracy %.4f == float accuracy %.4f" % (acc, ref_acc))
        ok = pred >= 0
        diff = np.abs(score[ok] - ref_prob[np.arange(N)[ok], pred[ok]]).max() if ok.any() else 1
        check(diff < 1e-5, "top-1 scores are the reference softmax within 1e-5 (max diff %.2g)" % diff)
        st, _, b = s.h1("GET", "/v2/models/fashion/stats")
        ms = json.loads(b)["model_stats"][0]
        check(ms["inference_stats"]["success"]["count"] == N, "stats: %d successes" % N)
        print("executions: %d for %d requests; batch sizes used: %s" %
              (ms["execution_count"], N, sorted(bs["batch_size"] for bs in ms["batch_stats"])))
    finally:
        check(s.stop() == 0, "exit 0 on SIGTERM")
    done()


if __name__ == "__main__":
    main()
