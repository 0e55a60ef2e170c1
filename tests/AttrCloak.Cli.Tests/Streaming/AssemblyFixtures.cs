// One throw-away redis-server for the streaming command tests of this assembly (isolated by key prefix).
[assembly: AssemblyFixture(typeof(AttrCloak.Testing.RedisServerFixture))]
