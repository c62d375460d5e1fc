from tests.dags.airflow_support import isolate_airflow

isolate_airflow()
