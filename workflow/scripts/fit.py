"""Fit the whole (model x K x method) lattice of one mask (em_lib.study.jobs.fit_job)."""

from em_lib.study.script import run


def main(smk, log):
    from em_lib.study import design, jobs

    job = design.MaskJob.from_wildcards(smk.wildcards)
    arrays = jobs.fit_job(
        jobs.load_arrays(smk.input.data),
        jobs.load_arrays(smk.input.mask)["mask"],
        job,
        smk.params.config,
    )
    jobs.save_arrays(smk.output[0], arrays)
    log.info(
        "%s: fitting CPU %.3f s over %d cells, %d cells failed",
        job,
        float(arrays["fit_cpu_time"][arrays["fit_cpu_time"] == arrays["fit_cpu_time"]].sum()),
        arrays["fit_failed"].size,
        int(arrays["fit_failed"].sum()),
    )


run(snakemake, main, compile_first=True)  # noqa: F821
