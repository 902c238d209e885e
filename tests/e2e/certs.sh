#!/usr/bin/env bash
# certs.sh - throwaway test PKI for sluice's TLS tests, made with the openssl
# command line only.  Nothing here is ever trusted outside the test run.
#
#   tests/e2e/certs.sh DIR [NAME]
#
# DIR must exist (or is created) and should be private to the run; NAME is
# the proxy's DNS name (default proxy.test).  Keys are ECDSA P-256 unless
# CERTS_KEY=rsa (RSA 2048).  Writes into DIR:
#
#   ca.crt ca.key               the test CA (trusted by the tests: --ca-file)
#   other-ca.crt other-ca.key   a second CA that sluice is never told about
#   server.crt server.key       NAME, signed by ca, valid now
#   expired.crt expired.key     NAME, signed by ca, valid 2020-01-01..2021-01-01
#   wrongname.crt wrongname.key wrong-name.test only, signed by ca, valid now
#   unknownca.crt unknownca.key NAME, signed by other-ca, valid now
#   client.crt client.key       a TLS client certificate (CN sluice-client),
#                               signed by ca
#   server.pin server.pin64     SHA-256 of server.crt's SubjectPublicKeyInfo,
#                               hex and base64
#   wrongname.pin               the same for wrongname.crt (hex): a valid pin
#                               of another key, for pin-mismatch tests
#
# Exit status 0 on success; on failure the openssl error is on stderr.
set -eu

dir=${1:?usage: certs.sh DIR [NAME]}
name=${2:-proxy.test}
mkdir -p "$dir"
cd "$dir"
umask 077

newkey() {	# newkey FILE
	if [ "${CERTS_KEY:-ec}" = rsa ]; then
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
	else
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
			-pkeyopt ec_param_enc:named_curve -out "$1"
	fi
}

# mkca BASE CN: a self-signed CA certificate.
mkca() {
	newkey "$1.key"
	openssl req -new -x509 -key "$1.key" -out "$1.crt" -days 30 -sha256 \
		-subj "/O=sluice tests/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash"
}

# The extensions of the leaf certificates.
cat >ext.cnf <<EOF
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = \$ENV::SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# leaf BASE CA CN SECTION: a certificate valid from an hour ago for 30 days.
leaf() {
	newkey "$1.key"
	openssl req -new -key "$1.key" -out "$1.csr" -subj "/O=sluice tests/CN=$3"
	SAN=DNS:$3 openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days 30 -sha256 \
		-extfile ext.cnf -extensions "$4" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr"
}

# expired BASE CA CN: a server certificate whose validity ended in 2021.
# openssl x509 -req in OpenSSL 3.0 cannot set a start date, so a minimal
# `openssl ca' set-up signs it with explicit dates.
expired() {
	newkey "$1.key"
	openssl req -new -key "$1.key" -out "$1.csr" -subj "/O=sluice tests/CN=$3"
	mkdir -p ca.db
	: >ca.db/index.txt
	openssl rand -hex 8 >ca.db/serial
	cat >ca.cnf <<EOF
[ca]
default_ca = testca
[testca]
dir = ca.db
database = ca.db/index.txt
serial = ca.db/serial
new_certs_dir = ca.db
certificate = $2.crt
private_key = $2.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
[anything]
organizationName = optional
commonName = supplied
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:$3
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	openssl ca -batch -notext -config ca.cnf -extensions server \
		-startdate 20200101000000Z -enddate 20210101000000Z \
		-in "$1.csr" -out "$1.crt" 2>ca.err || { cat ca.err >&2; return 1; }
	rm -rf ca.db ca.cnf ca.err "$1.csr"
}

# pin CERT: hex SHA-256 of the certificate's DER SubjectPublicKeyInfo.
pin() {
	openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | od -An -v -tx1 | tr -d ' \n'
}
pin64() {
	openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64
}

mkca ca "sluice test CA"
mkca other-ca "sluice unknown CA"
leaf server ca "$name" server
leaf wrongname ca wrong-name.test server
leaf unknownca other-ca "$name" server
leaf client ca sluice-client client
expired expired ca "$name"
pin server.crt >server.pin
pin64 server.crt >server.pin64
pin wrongname.crt >wrongname.pin
rm -f ext.cnf ./*.srl
# Certificates and pins readable by everyone, keys by root only (stunnel);
# the directory itself stays private unless the caller opens it.
chmod 644 ./*.crt ./*.pin ./*.pin64
