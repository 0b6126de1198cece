#!/bin/sh
# /usr/local/bin/update-postgis.sh of the postgis test image, written for it after
# postgis/docker-postgis@51b35550144e6bf1c97a8dc7530b8eaa212180bf:18-3.6/update-postgis.sh: brings
# PostGIS in template_postgis, POSTGRES_DB and every database named as an argument to the installed
# version (POSTGIS_VERSION without its Debian revision), as POSTGRES_USER.
set -e
export PGUSER="$POSTGRES_USER"
version="${POSTGIS_VERSION%%+*}"

for database in template_postgis "$POSTGRES_DB" "$@"; do
	echo "Updating PostGIS extensions '$database' to $version"
	psql --dbname="$database" -c "
		CREATE EXTENSION IF NOT EXISTS postgis VERSION '$version';
		ALTER EXTENSION postgis UPDATE TO '$version';
		CREATE EXTENSION IF NOT EXISTS postgis_topology VERSION '$version';
		ALTER EXTENSION postgis_topology UPDATE TO '$version';
		CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;
		CREATE EXTENSION IF NOT EXISTS postgis_tiger_geocoder VERSION '$version';
		ALTER EXTENSION postgis_tiger_geocoder UPDATE TO '$version';
	"
done
