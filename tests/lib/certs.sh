# Sourced: test certificates.
#
#   pv_test_certs DIR   makes, in DIR, a throwaway CA (ca.pem, ca.key) and a server
#                       certificate it signed for 127.0.0.1 and localhost (server.pem,
#                       server.key), valid 7 days; openssl's output goes to DIR/openssl.log.
#                       Used by the Cosmos DB TLS server and the KurrentDB stand-in's --tls.
pv_test_certs()
{
	local d=$1
	(
		umask 077
		cd "$d" &&
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
				-keyout ca.key -out ca.pem -days 7 -subj "/CN=PhotoVote throwaway test CA" \
				-addext basicConstraints=critical,CA:TRUE \
				-addext keyUsage=critical,keyCertSign,cRLSign &&
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
				-keyout server.key -out server.csr -subj "/CN=127.0.0.1" &&
			printf '%s\n' 'subjectAltName = IP:127.0.0.1, DNS:localhost' \
				'basicConstraints = critical, CA:FALSE' \
				'keyUsage = critical, digitalSignature' \
				'extendedKeyUsage = serverAuth' >server.ext &&
			openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
				-days 7 -extfile server.ext -out server.pem &&
			chmod 644 ca.pem server.pem
	) >"$d/openssl.log" 2>&1
}
