#!/bin/sh
# certbot's --deploy-hook for webpushd (docs/OPERATIONS.md, "TLS with certbot"): after each
# renewal, copies the new certificate and key where the webpushd user can read them (certbot's
# own files are root's), then reloads the service: SIGHUP, so new connections get the new
# certificate and none is dropped. certbot sets RENEWED_LINEAGE (/etc/letsencrypt/live/<name>).
#   certbot certonly --standalone -d push.example.org --deploy-hook /etc/webpushd/certbot-deploy-hook.sh
set -eu
dest=${WEBPUSHD_TLS_DIR:-/etc/webpushd/tls}
group=${WEBPUSHD_GROUP:-webpushd}
install -d -m 0750 -g "$group" "$dest"
for file in fullchain.pem privkey.pem; do
  # a whole new file renamed over the old one: a reload never reads half of one
  install -m 0640 -g "$group" "$RENEWED_LINEAGE/$file" "$dest/.$file.new"
  mv -f "$dest/.$file.new" "$dest/$file"
done
${WEBPUSHD_RELOAD:-systemctl reload webpushd}
