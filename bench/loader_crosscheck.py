"""A real data loader over a dataset `gateway bench prepare` wrote: PyTorch's
DataLoader (worker processes, prefetching, collation into batch tensors)
reading the unet3d or resnet50 pattern from a directory (or, with --s3, the
objects through s3torchconnector), one simulated accelerator computing
--compute-ms per batch. Prints one JSON line: samples/s, MiB/s and
accelerator utilisation computed as `gateway bench` computes it (compute
time over wall time, the first step of each epoch excluded), so
bench/bench-loader can put both side by side.

The dataset's layout comes from the manifest `gateway bench prepare` left
next to it; file names are the layout's, sorted.
"""

import argparse
import json
import os
import sys
import time

import torch
from torch.utils.data import DataLoader, Dataset


def layout(manifest):
    w = manifest["workload"]
    kind = w["kind"]
    p = w["scaled"]
    return kind, p


class FileSamples(Dataset):
    """Sample i of a directory dataset: a whole file (unet3d) or a record
    inside a record file (resnet50: samples_per_file records each)."""

    def __init__(self, root, kind, p):
        self.dir = os.path.join(root, kind)
        self.files = sorted(f for f in os.listdir(self.dir))
        self.per_file = max(1, p["samples_per_file"])
        self.sample = p["sample_bytes"]
        self.n = len(self.files) * self.per_file

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        f, s = divmod(i, self.per_file)
        buf = bytearray(self.sample)
        with open(os.path.join(self.dir, self.files[f]), "rb", buffering=0) as fh:
            fh.seek(s * self.sample)
            got = fh.readinto(buf)
        if got != self.sample:
            raise IOError(f"short read of {self.files[f]} at sample {s}: {got} of {self.sample}")
        # No copy: the tensor shares the buffer the file was read into.
        return torch.frombuffer(buf, dtype=torch.uint8)


class S3Samples(Dataset):
    """The same samples as objects read with s3torchconnector's client."""

    def __init__(self, bucket, prefix, kind, p, endpoint, region):
        self.bucket, self.prefix, self.kind = bucket, prefix.strip("/"), kind
        self.endpoint, self.region = endpoint, region
        self.per_file = max(1, p["samples_per_file"])
        self.sample = p["sample_bytes"]
        self.client = None
        c = self._client()
        base = f"{self.prefix}/{kind}/" if self.prefix else f"{kind}/"
        self.keys = sorted(o.key for page in c.list_objects(bucket, base) for o in page.object_info)
        self.n = len(self.keys) * self.per_file

    def _client(self):
        # One client per worker process (a CRT client does not survive fork).
        if self.client is None:
            from s3torchconnector._s3client import S3Client, S3ClientConfig

            self.client = S3Client(
                self.region, endpoint=self.endpoint, s3client_config=S3ClientConfig(force_path_style=True)
            )
        return self.client

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        from s3torchconnector import S3ReaderConstructor

        f, s = divmod(i, self.per_file)
        # One ranged GET of exactly the sample, as `gateway bench` reads a
        # record. The default sequential reader streams the object from its
        # start, and range_based() without buffer_size=0 fills an 8 MiB
        # buffer per reader: a HEAD and an 8 MiB GET per 28 KiB record
        # (seen in the gateway's request log).
        reader = self._client().get_object(
            self.bucket, self.keys[f], reader_constructor=S3ReaderConstructor.range_based(buffer_size=0)
        )
        reader.seek(s * self.sample)
        data = reader.read(self.sample)
        if len(data) != self.sample:
            raise IOError(f"short read of {self.keys[f]} at sample {s}: {len(data)} of {self.sample}")
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["client"] = None
        return state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", help="the file:// dataset root (where <workload>.manifest.json is)")
    ap.add_argument("--s3", help="s3://BUCKET/PREFIX of the same dataset")
    ap.add_argument("--manifest", help="the manifest (default: DIR/<workload>.manifest.json)")
    ap.add_argument("--endpoint")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--workload", required=True, choices=["unet3d", "resnet50"])
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--compute-ms", type=float, required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    manifest_path = a.manifest or os.path.join(a.dir, f"{a.workload}.manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    kind, p = layout(manifest)
    if a.s3:
        bucket, _, prefix = a.s3[len("s3://"):].partition("/")
        ds = S3Samples(bucket, prefix, kind, p, a.endpoint, a.region)
    else:
        ds = FileSamples(a.dir, kind, p)
    g = torch.Generator()
    g.manual_seed(a.seed)
    loader = DataLoader(
        ds,
        batch_size=p["batch_size"],
        shuffle=True,
        generator=g,
        num_workers=a.workers,
        prefetch_factor=2,
        persistent_workers=a.epochs > 1,
        drop_last=False,
    )
    compute = a.compute_ms / 1000.0
    samples = nbytes = 0
    busy = wall = 0.0
    start = time.perf_counter()
    for _ in range(a.epochs):
        last = time.perf_counter()
        for step, batch in enumerate(loader):
            samples += batch.shape[0]
            nbytes += batch.numel()
            c0 = time.perf_counter()
            if compute > 0:
                time.sleep(compute)
            now = time.perf_counter()
            if step > 0:
                busy += now - c0
                wall += now - last
            last = now
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "loader": "torch.utils.data.DataLoader" + (" + s3torchconnector" if a.s3 else ""),
                "torch": torch.__version__,
                "workload": kind,
                "workers": a.workers,
                "batch": p["batch_size"],
                "samples": samples,
                "bytes": nbytes,
                "seconds": elapsed,
                "samples_per_s": samples / elapsed,
                "mib_per_s": nbytes / elapsed / 2**20,
                "au_pct": 100.0 * busy / wall if wall > 0 else None,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
