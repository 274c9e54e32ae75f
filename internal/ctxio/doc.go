// Package ctxio ties a reader to a context: reads fail once the context is
// done, so a long copy or unpack of a stream (an image archive import, a
// layer applied to disk) stops promptly when its caller gives up, even when
// the underlying reader itself does not watch the context.
package ctxio
