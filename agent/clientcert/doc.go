// Package clientcert gives a node agent its client certificate for the API
// server and keeps it valid, as the kubelet does with --kubeconfig,
// --bootstrap-kubeconfig, --cert-dir and rotateCertificates.
//
// New reads the kubeconfig and checks its client certificate, and says
// plainly what is wrong with a file it cannot use (which file, what is
// missing, when the certificate expired). It makes no request. An expired
// certificate with no bootstrap kubeconfig to replace it is refused there:
// the kubelet starts with it and fails later (401s, or an exit five minutes
// on with rotation).
//
// When the kubeconfig does not exist, cannot be used or its certificate
// expired, and a bootstrap kubeconfig is given, Run requests a certificate
// with the bootstrap credentials (a bootstrap token, say): a new ECDSA P-256
// key and a CertificateSigningRequest to the signer
// kubernetes.io/kube-apiserver-client-kubelet for CN=system:node:<node>,
// O=system:nodes, usages digital signature and client auth, named
// node-csr-<digest of key, subject and usages> so that a restart finds its own
// request again. It waits, saying so in its log, until the request is approved
// and signed, stores the pair in the cert dir as kubelet-client-<time>.pem
// behind the kubelet-client-current.pem symlink and writes the kubeconfig
// pointing at the symlink (files private to their owner, mode 0600). A valid
// certificate already in the cert dir is used again instead of asking.
//
// With Rotate, client-go's certificate manager renews the certificate at
// 70–90% of its lifetime, asking with the current certificate (with the
// bootstrap credentials once it expired). A certificate that expires without
// a successor is logged as an error.
//
// Config is the rest.Config for the agent's clients. Its transport presents
// the certificate in use at each TLS handshake and closes every connection
// when the certificate changes, so clients made once keep working across the
// bootstrap and every renewal. Ready is closed once there is a certificate:
// an agent keeps its static pods running meanwhile and starts what talks to
// the API server then.
package clientcert
