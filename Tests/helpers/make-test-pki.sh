#!/bin/sh
# Makes a throwaway PKI for the TLS tests in directory $1 (created if missing), with the openssl
# CLI, at test time: nothing secret is committed. EC P-256 keys (fast), 2 days of validity.
#   ca.pem ca.key                 the test CA (also the client CA)
#   server.pem server.key         CN=localhost, SAN DNS:localhost IP:127.0.0.1 IP:::1, signed by ca
#   server2.pem server2.key       the same names with another key (a renewed certificate)
#   client.pem client.key         CN=alice, OU=Ops, O=Example Org, C=DE, signed by ca
#   other-ca.pem other-ca.key     an unrelated CA
#   stranger.pem stranger.key     CN=mallory, signed by other-ca (must be refused)
#   mismatch.key                  a key that belongs to no certificate
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
days=2
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "$2" -days $days -out "$1.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() { # name subject ca extensions
    key "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days $days \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
server_ext='subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth'
client_ext='extendedKeyUsage=clientAuth'
ca ca "/CN=swinetd test CA"
ca other-ca "/CN=unrelated CA"
leaf server "/CN=localhost" ca "$server_ext"
leaf server2 "/CN=localhost" ca "$server_ext"
leaf client "/C=DE/O=Example Org/OU=Ops/CN=alice" ca "$client_ext"
leaf stranger "/CN=mallory" other-ca "$client_ext"
key mismatch.key
chmod 600 ./*.key
