"""What a night past one invocation costs: a large table's snapshot day and a busy hour's compaction,
built in pieces on Step Functions, beside Athena and EMR Serverless doing the same merge.

``python -m bench.studies.fan_out_cost --snapshot-cpu-s-per-gb X --compaction-cpu-s-per-gb Y
--snapshot-compression R --compaction-compression S [--table-gb 1000 --hour-gb 100 ...]``

A model, not a measurement: it multiplies the figures the bench rows measure (the pieces' summed CPU
seconds per uncompressed GB of input, rows 9 and 10; the compression ratio of the lake's gzip lines)
by list prices (``bench.support.prices``). Assumptions, each stated where it is used:

* Lambda: a piece runs at its function's memory (SnapshotFunction 1,769 MB = one vCPU,
  CompactionFunction 1,024 MB = 0.58 vCPU), so its wall seconds are its CPU seconds divided by its
  vCPU share, and it is billed for them (GB-seconds).
* Step Functions: a Standard execution of the fan-out state machine: about 10 transitions around
  the pieces (choices, the plan, the map, the commit, the plan that finds it done) and 2 per piece
  (its child execution's task, and one retry in ten pieces rounded up).
* S3: one GET per input object (the lake's parts are 128 MiB, raw/ objects about 2 MB), one PUT per
  8 MiB upload part written plus the multipart create and complete of each 128 MiB output part, and
  the pieces' records (a PUT, a GET and a DELETE each).
* Athena: a CTAS doing the merge scans the compressed input once (its output costs nothing more).
* EMR Serverless: a Spark job doing the merge on JSON; its CPU is ``--engine-cpu-ratio`` times ours
  (default 1.9: DuckDB's measured CPU for the same merge, bench row 7, the nearest engine we measure),
  on Arm workers with 4 GB per vCPU; the one-minute minimum and start-up are left out (in its favour).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from bench.support import prices as p

GB = 1000**3
MIB = 1024**2
SNAPSHOT_MEMORY_GB = 1769 / 1024
COMPACTION_MEMORY_GB = 1024 / 1024
#: Lambda gives a full vCPU at 1,769 MB and CPU in proportion to memory below it.
FULL_VCPU_MB = 1769
LAKE_PART_BYTES = 128 * MIB
RAW_OBJECT_BYTES = 2_000_000
UPLOAD_PART_BYTES = 8 * MIB
EXECUTION_TRANSITIONS = 10
PIECE_TRANSITIONS = 2


@dataclass(frozen=True)
class Job:
    """One day or hour: its uncompressed input and output, and how it is read and written."""

    name: str
    input_gb: float
    output_gb: float
    compression: float
    cpu_s_per_gb: float
    memory_gb: float
    piece_gb: float
    input_object_bytes: int

    @property
    def pieces(self) -> int:
        return max(1, math.ceil(self.input_gb / self.piece_gb))

    @property
    def cpu_seconds(self) -> float:
        return self.input_gb * self.cpu_s_per_gb

    @property
    def vcpu_share(self) -> float:
        return min(1.0, self.memory_gb * 1024 / FULL_VCPU_MB)


def lambda_dollars(job: Job) -> float:
    wall = job.cpu_seconds / job.vcpu_share
    return (
        wall * job.memory_gb * p.LAMBDA_ARM_PER_GB_SECOND
        + job.pieces * 3 * p.LAMBDA_PER_MILLION_REQUESTS / 1e6
    )


def step_functions_dollars(job: Job) -> float:
    transitions = EXECUTION_TRANSITIONS + PIECE_TRANSITIONS * job.pieces
    return transitions * p.STEP_FUNCTIONS_PER_THOUSAND_TRANSITIONS / 1000


def s3_dollars(job: Job) -> float:
    gets = job.input_gb * GB / job.compression / job.input_object_bytes + job.pieces
    output_bytes = job.output_gb * GB / job.compression
    puts = output_bytes / UPLOAD_PART_BYTES + 2 * output_bytes / LAKE_PART_BYTES + 2 * job.pieces
    return gets * p.S3_GET_PER_THOUSAND / 1000 + puts * p.S3_PUT_PER_THOUSAND / 1000


def athena_dollars(job: Job) -> float:
    return job.input_gb * GB / job.compression / 1000**4 * p.ATHENA_PER_TB_SCANNED


def emr_dollars(job: Job, engine_cpu_ratio: float) -> float:
    vcpu_hours = job.cpu_seconds * engine_cpu_ratio / 3600
    return vcpu_hours * (p.EMR_SERVERLESS_ARM_PER_VCPU_HOUR + 4 * p.EMR_SERVERLESS_ARM_PER_GB_HOUR)


def hours_at(job: Job, concurrency: int) -> float:
    """Wall hours at ``concurrency`` pieces at once: rounds of pieces, each as long as the longest."""
    piece_wall = job.cpu_seconds / job.pieces / job.vcpu_share
    return math.ceil(job.pieces / concurrency) * piece_wall / 3600


def report(jobs: list[Job], concurrency: int, engine_cpu_ratio: float) -> None:
    print(
        "| job | pieces | wall at concurrency | Lambda | Step Functions | S3 requests | changelake |"
        " Athena CTAS | EMR Serverless |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for job in jobs:
        ours = lambda_dollars(job) + step_functions_dollars(job) + s3_dollars(job)
        print(
            f"| {job.name} | {job.pieces} | {hours_at(job, concurrency) * 60:.0f} min at {concurrency} |"
            f" ${lambda_dollars(job):.2f} | ${step_functions_dollars(job):.3f} | ${s3_dollars(job):.3f} |"
            f" ${ours:.2f} | ${athena_dollars(job):.2f} | ${emr_dollars(job, engine_cpu_ratio):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot-cpu-s-per-gb", type=float, required=True)
    parser.add_argument("--compaction-cpu-s-per-gb", type=float, required=True)
    parser.add_argument("--snapshot-compression", type=float, required=True)
    parser.add_argument("--compaction-compression", type=float, required=True)
    parser.add_argument("--table-gb", type=float, default=1000.0)
    parser.add_argument("--changed-share", type=float, default=0.05)
    parser.add_argument("--hour-gb", type=float, default=100.0)
    # The functions' FAN_OUT_PIECE_BYTES defaults: compressed bytes of input per piece.
    parser.add_argument("--snapshot-piece-compressed-gb", type=float, default=0.5 * 1.073741824)
    parser.add_argument("--compaction-piece-compressed-gb", type=float, default=0.25 * 1.073741824)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--engine-cpu-ratio", type=float, default=1.9)
    args = parser.parse_args()
    day_input = args.table_gb * (1 + args.changed_share)
    jobs = [
        Job(
            f"snapshot day, {args.table_gb:.0f} GB table",
            day_input,
            args.table_gb,
            args.snapshot_compression,
            args.snapshot_cpu_s_per_gb,
            SNAPSHOT_MEMORY_GB,
            args.snapshot_piece_compressed_gb * args.snapshot_compression,
            LAKE_PART_BYTES,
        ),
        Job(
            f"compacted hour, {args.hour_gb:.0f} GB",
            args.hour_gb,
            args.hour_gb,
            args.compaction_compression,
            args.compaction_cpu_s_per_gb,
            COMPACTION_MEMORY_GB,
            args.compaction_piece_compressed_gb * args.compaction_compression,
            RAW_OBJECT_BYTES,
        ),
    ]
    report(jobs, args.concurrency, args.engine_cpu_ratio)


if __name__ == "__main__":
    main()
