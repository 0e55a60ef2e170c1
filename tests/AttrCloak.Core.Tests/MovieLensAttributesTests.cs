using AttrCloak.Core.Data;

namespace AttrCloak.Core.Tests;

public sealed class MovieLensAttributesTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(17, 0)]
    [InlineData(18, 1)]
    [InlineData(24, 1)]
    [InlineData(25, 2)]
    [InlineData(34, 2)]
    [InlineData(35, 3)]
    [InlineData(44, 3)]
    [InlineData(45, 4)]
    [InlineData(49, 4)]
    [InlineData(50, 5)]
    [InlineData(55, 5)]
    [InlineData(56, 6)]
    [InlineData(73, 6)]
    public void Raw_ages_fall_into_the_ml_1m_groups(int years, int group) =>
        MovieLensAttributes.AgeGroup(years).ShouldBe(group);

    [Fact]
    public void The_class_counts_are_those_of_the_protocol()
    {
        MovieLensAttributes.Gender.ClassCount.ShouldBe(2);
        MovieLensAttributes.Age.ClassCount.ShouldBe(7);
        MovieLensAttributes.Occupation1M.ClassCount.ShouldBe(21);
    }
}
