"""WSGI entry of the ckan-base test image (uwsgi --wsgi-file /srv/app/wsgi.py --module
wsgi:application), written for it after the contract of ckan/ckan@ckan-2.11.5:wsgi.py, the file
upstream's image adds from CKAN's repository (upstream's text is not copied): the ini is $CKAN_INI
when set and not empty, else ckan.ini beside this file; a missing ini is an error; the ini's logging
sections configure logging before CKAN's app is made from its configuration."""

import os
from logging.config import fileConfig

from ckan.cli import CKANConfigLoader
from ckan.config.middleware import make_app

ini = os.environ.get("CKAN_INI") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "ckan.ini")
if not os.path.exists(ini):
    raise RuntimeError(f"no CKAN ini at {ini}: set CKAN_INI or put ckan.ini beside {__file__}")
fileConfig(ini)
application = make_app(CKANConfigLoader(ini).get_config())
