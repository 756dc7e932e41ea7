# Image for every container of docker-compose.yaml that runs project code, and for
# the Helm chart (helm/values.yaml): Airflow 3.3.2 on Python 3.11 plus the lead
# flow's locked dependencies and code.
FROM apache/airflow:3.3.2-python3.11

# The base image installs packages as the unprivileged "airflow" user into its
# virtual environment under /home/airflow/.local.
USER airflow

# requirements.txt is a complete lock for CPython 3.11 (see requirements.in), so pip
# installs exactly those pins with --no-deps. Resolving again would let pip weigh
# the lock against the image's preinstalled providers and move pins.
# NOTE: packages that the image ships but the lock does not list (the Celery
# provider and its celery, kombu and redis clients among them) stay at the image's
# versions; `pip check` inside the built image is the way to see any conflict.
COPY --chown=airflow:root requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir --no-deps -r /opt/airflow/requirements.txt

# The code is baked in so the image also runs without bind mounts, as the Helm
# chart runs it. docker-compose.yaml mounts the working tree over these paths.
# plugins/ is empty and untracked, so a fresh clone has nothing to copy from it;
# add a COPY line for it once it holds a plugin.
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root sql/ /opt/airflow/sql/
COPY --chown=airflow:root scripts/ /opt/airflow/scripts/

# include/ makes the leadflow package importable; /opt/airflow makes the sandbox
# package importable when ./sandbox is mounted there.
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow \
    LEADFLOW_SQL_DIR=/opt/airflow/sql
