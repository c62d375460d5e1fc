from tests.dags.airflow_support import isolate_airflow

isolate_airflow()  # the cluster rehearsal parses the DAG in this process, as tests/dags does
