#
# Request Log module
#

[depend]
server

[xml]
etc/jetty-requestlog.xml
