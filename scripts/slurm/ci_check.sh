#!/usr/bin/env bash
# CI's real cluster check: starts the local one-node Slurm cluster, embeds a corpus as a 4-task job
# array (scripts/slurm/embed_array.sbatch), merges the shards, and requires the merged JSONL and
# npy results to be byte-identical to a single-process run.
#   UNMASK  the binary (default: .build-test/release/unmask, which scripts/test.sh builds)
#   MODEL   the model (default: the tiny fixture Tests/Fixtures/models/smollm-f32)
set -euo pipefail
cd "$(dirname "$0")/../.."
UNMASK=$(realpath "${UNMASK:-.build-test/release/unmask}")
MODEL=$(realpath "${MODEL:-Tests/Fixtures/models/smollm-f32}")
[[ -x $UNMASK ]] || { echo "ci_check: $UNMASK is not built (run swift build first)" >&2; exit 1; }

scripts/slurm/local_cluster.sh start
work=$(mktemp -d /tmp/unmask-slurm-check.XXXXXX)
trap '[[ $? == 0 ]] && rm -rf "$work" || echo "ci_check: failed; logs and files kept in $work" >&2' EXIT
# 300 JSONL records of 1-40 words, with ids and a field to keep; a few blank lines.
awk 'BEGIN { srand(7); split("the a cat dog runs far away blue red green house tree river mountain small large", w, " ");
             for (i = 0; i < 300; i++) { if (i % 37 == 5) print ""; n = 1 + int(rand() * 40); t = "";
               for (j = 0; j < n; j++) t = t (j ? " " : "") w[1 + int(rand() * 16)];
               printf "{\"id\": \"doc-%d\", \"text\": \"%s\", \"n\": %d}\n", i, t, i } }' > "$work/corpus.jsonl"

export UNMASK MODEL INPUT="$work/corpus.jsonl"
for format in jsonl npy; do
    extra="--window 16 --keep n --max-length 64"
    [[ $format == npy ]] && extra="$extra --precision int8"
    # The reference runs with the tasks' one thread: across thread counts, BLAS may round a few
    # values differently (the int8 calibration shows it), so bit-identity is checked like for like.
    # shellcheck disable=SC2086
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$UNMASK" embed --model "$MODEL" --input "$INPUT" --output "$work/single.$format" $extra
    export OUTPUT="$work/sharded.$format" EMBED_ARGS="$extra"
    start=$(date +%s)
    (cd "$work" && sbatch --wait --array=0-3 "$OLDPWD/scripts/slurm/embed_array.sbatch")
    echo "ci_check: 4-task array ($format) took $(($(date +%s) - start)) s"
    ls "$work"/sharded-0000?-of-00004.* >/dev/null
    "$UNMASK" shards merge --output "$OUTPUT"
    cmp "$work/single.$format" "$OUTPUT"
    if [[ $format == npy ]]; then cmp "$work/single.ids.jsonl" "$work/sharded.ids.jsonl"; fi
    echo "ci_check: merged $format shards = the single-process run"
done
scripts/slurm/local_cluster.sh stop
