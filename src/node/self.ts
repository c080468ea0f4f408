import { loadIdentity, loadIdentityFile, type Identity } from '../common/identity.js';
import type { PeerInfo } from '../common/types.js';
import { PROTOCOL_VERSION } from '../wire/constants.js';
import type { Hello } from '../wire/control.js';
import type { PeerOptions, ResolvedPeerOptions } from './peer-options.js';

/**
 * This node as it presents itself: its identity (from `privateKey` or `privateKeyFile`), the
 * hello it sends on every connection, the address it advertises, the addresses that are itself,
 * and itself described as a peer (the sender of its own network broadcasts, to its handlers).
 * Needs no host: the node sets `listenAddress` once it listens and `startedAt` when it starts.
 */
export class LocalPeer {
  readonly identity: Identity;
  /** What start() should warn about the key file (created just now, or readable by others). */
  readonly keyFileNote: string | undefined;
  listenAddress: string | null = null;
  startedAt = new Date();

  /** The key file, when the key came from one (locked while the node runs: src/common/key-lock.ts). */
  readonly keyFile?: string;

  constructor(
    options: Pick<PeerOptions, 'privateKey' | 'privateKeyFile'>,
    private readonly opts: Pick<ResolvedPeerOptions, 'externalAddress' | 'maxFrameBytes' | 'tls'>,
  ) {
    if (options.privateKey !== undefined && options.privateKeyFile !== undefined) {
      throw new Error('set privateKey or privateKeyFile, not both');
    }
    if (options.privateKeyFile === undefined) {
      this.identity = loadIdentity(options.privateKey);
      return;
    }
    this.keyFile = options.privateKeyFile;
    const loaded = loadIdentityFile(options.privateKeyFile);
    this.identity = loaded.identity;
    if (loaded.created) this.keyFileNote = `wrote a new private key to ${options.privateKeyFile}`;
    else if (loaded.widePermissions) this.keyFileNote = `${options.privateKeyFile} is readable by others; chmod 600 it`;
  }

  get id(): string {
    return this.identity.peerId;
  }

  /** The address this node announces: externalAddress, else where it listens. */
  advertisedAddress(): string | null {
    return this.opts.externalAddress ?? this.listenAddress;
  }

  /** Addresses that are this node (its listen and external address). */
  ownAddresses(): string[] {
    return [this.listenAddress, this.opts.externalAddress].filter((a): a is string => !!a);
  }

  /** The hello this node sends on every connection. */
  hello(): Hello {
    return {
      version: PROTOCOL_VERSION,
      peerId: this.id,
      publicKey: this.identity.publicKeyRaw.toString('hex'),
      listenAddress: this.advertisedAddress(),
      maxFrameBytes: this.opts.maxFrameBytes,
    };
  }

  /** This node described as a peer: the sender of its own network broadcasts, as its handlers see it. */
  info(): PeerInfo {
    const address = this.advertisedAddress();
    return {
      id: this.id,
      remoteAddress: address ?? 'local',
      listenAddress: address,
      direction: 'outbound',
      connectedAt: this.startedAt,
      rttMs: 0,
      secure: this.opts.tls,
    };
  }
}
