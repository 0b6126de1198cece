#!/bin/bash
# /docker-entrypoint-initdb.d/10_postgis.sh of the postgis test image, written for it after
# postgis/docker-postgis@51b35550144e6bf1c97a8dc7530b8eaa212180bf:18-3.6/initdb-postgis.sh. The
# entrypoint sources it on a fresh volume (it is not executable), with "${psql[@]}" running SQL as
# POSTGRES_USER: it creates the template database template_postgis and loads PostGIS into it and
# into POSTGRES_DB. The tiger geocoder and fuzzystrmatch come too, as upstream does for PostGIS
# before 3.7 (Debian bookworm's is 3.3).
set -e
export PGUSER="$POSTGRES_USER"

"${psql[@]}" <<-'SQL'
	CREATE DATABASE template_postgis IS_TEMPLATE true;
SQL

for database in template_postgis "$POSTGRES_DB"; do
	echo "Loading PostGIS extensions into $database"
	"${psql[@]}" --dbname="$database" <<-'SQL'
		CREATE EXTENSION IF NOT EXISTS postgis;
		CREATE EXTENSION IF NOT EXISTS postgis_topology;
		CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;
		CREATE EXTENSION IF NOT EXISTS postgis_tiger_geocoder;
	SQL
done
