#
# Base Server Module
#

[lib]
lib/*.jar
lib/ext/*.jar
resources/

[xml]
etc/jetty.xml