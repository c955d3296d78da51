"""One chunk of bootstrap replicates of a mask's selected model (em_lib.study.selected)."""

from em_lib.study.script import run


def main(smk, log):
    import numpy as np

    from em_lib.study import design, jobs, results, selected

    job = design.MaskJob.from_wildcards(smk.wildcards)
    data = jobs.load_arrays(smk.input.data)
    mask = jobs.load_arrays(smk.input.mask)["mask"]
    X_obs = np.where(mask, np.nan, data["X"])
    cell = selected.selected_cell(
        results.open_results(smk.input.results), job, smk.params.criterion, X_obs
    )
    chunk = int(smk.wildcards.chunk)
    if cell is None:
        reason = "no exact-EM fit of this mask succeeded, so there is no model to bootstrap"
        log.warning("%s: %s", job, reason)
        results.write_netcdf(selected.empty_chunk(job, chunk, reason), smk.output[0])
        return
    part = selected.bootstrap_chunk(
        X_obs, data["feature_names"].tolist(), cell, job, chunk, smk.params.config
    )
    results.write_netcdf(part, smk.output[0])
    log.info(
        "%s chunk %d: %s K=%d, %d replicates, %d failed",
        job,
        chunk,
        cell["model"],
        cell["n_components"],
        part.sizes["replicate"],
        int(part["failed"].sum()),
    )


run(snakemake, main, compile_first=True)  # noqa: F821
