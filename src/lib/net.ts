// Small network helpers.
import { createServer, type AddressInfo } from 'node:net';

/**
 * A TCP port nothing listens on now (what the kernel hands out for port 0), for a process
 * that must be told its port before it starts.
 */
export function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, address, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
