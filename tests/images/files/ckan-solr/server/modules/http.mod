#
# Jetty HTTP Connector
#

[depend]
server

[xml]
etc/jetty-http.xml