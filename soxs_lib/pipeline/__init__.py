"""One set, end to end: ``run.run_mdark`` loads a frame set, makes the master
dark, writes the product, its QC plot, log and report.  The night layer and
the command line call it as any user would."""
