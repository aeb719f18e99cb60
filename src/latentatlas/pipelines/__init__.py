"""One module per command: each ties a `store.Run` to the pure modules (analysis, samplers, paths,
evaluation) and writes the command's files. Only pipelines, report, explorer and cli import `store` or `plots`.
"""
