"""Transform: the dbt project (staging → intermediate → marts → feedback) as Dagster assets."""
