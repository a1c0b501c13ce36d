"""The example app's own job types: named in `job_modules`, shipped in Taskmill's package layer."""
