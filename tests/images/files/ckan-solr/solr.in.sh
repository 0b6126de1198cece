# /etc/default/solr.in.sh of the ckan-solr test image (SOLR_INCLUDE). Upstream copies Solr's
# bin/solr.in.sh here (apache/solr-docker@fd6589c6455c184356b93880265f17c645840405:9.8/Dockerfile),
# a file of commented-out examples only
# (apache/solr@a9e7506c618e392d357dd5cb636a0c8772e79fc5:solr/bin/solr.in.sh): no setting is made by
# it, so none is made here. Settings come from the environment (SOLR_HEAP, SOLR_OPTS, ...).
