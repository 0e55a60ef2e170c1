[assembly: AssemblyFixture(typeof(AttrCloak.Testing.RedisServerFixture))]
